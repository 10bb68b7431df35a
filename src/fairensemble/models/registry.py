"""Models built by name: ``create("resnet50", num_classes=2)`` (pure torch, no torchvision/timm).

``BUILTIN`` is the one list of built-in names, each mapped to its builder as
``module:function``. A user's own model is named the same way: ``package.module:function``
or ``path/to/file.py:function`` (the way Hydra and Lightning take class paths); it is called
with ``num_classes`` (and ``in_channels`` / ``image_size`` when it takes them) and must return
an ``nn.Module`` whose output has ``num_classes`` columns. Config validation reads names from
here without importing torch; builders import it when called.

Every builder takes ``num_classes``; ``create`` passes ``in_channels`` and ``image_size``
where the builder takes them and forwards other keywords (``width`` for cnn; ``in_features``,
``hidden``, ``activation``, ``dropout``, ``seed`` for mlp), refusing ones it does not take.
Pretrained weights are read and fitted by ``models.weights``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fairensemble.common.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

# the built-in model names, each mapped to its builder as ``module:function``
BUILTIN = {
    "mlp": "fairensemble.models.mlp:build",
    "bag": "fairensemble.models.bag:build",
    "cnn": "fairensemble.models.cnn:build",
    "resnet18": "fairensemble.models.resnet:resnet18",
    "resnet34": "fairensemble.models.resnet:resnet34",
    "resnet50": "fairensemble.models.resnet:resnet50",
    "vit_tiny": "fairensemble.models.vit:vit_tiny",
    "vit_small": "fairensemble.models.vit:vit_small",
}
# the built-in model names
NAMES = tuple(BUILTIN)
HEAD_NAMES = ("fc", "head", "classifier")  # where a model without ``head_name`` keeps its head
_FACTORY = re.compile(r"^(?P<where>[^:]+\.py|[A-Za-z_][\w.]*):(?P<fn>[A-Za-z_]\w*)$")


def is_factory(name: str) -> bool:
    """Whether ``name`` names a user factory (``module:function`` / ``file.py:function``)."""
    return name not in BUILTIN and _FACTORY.match(name) is not None


def check_name(name: str) -> str:
    """``name`` when it is a built-in name or a factory path; a ValueError otherwise."""
    if name in BUILTIN or is_factory(name):
        return name
    raise ConfigError(f"model.name: expected one of {list(NAMES)} or a factory "
                     f"'package.module:function' or 'path/to/file.py:function', got {name!r}")


def factory_file(name: str) -> Path:
    """The source file that defines factory ``name`` (its content is part of a cell's
    identity), found without running the factory's module."""
    where = _FACTORY.match(name)["where"]
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"model.name: {where}: no such file")
        return path
    try:
        spec = importlib.util.find_spec(where)
    except (ImportError, ValueError) as err:
        raise ConfigError(f"model.name: module {where!r} cannot be found ({err})") from None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise ConfigError(f"model.name: module {where!r} cannot be found (is it installed or on "
                         "PYTHONPATH?)")
    return Path(spec.origin)


def resolve(name: str) -> Callable[..., Any]:
    """The builder of a built-in name, or the user's factory function (imported)."""
    spec = BUILTIN.get(name) or check_name(name)
    where, fn = spec.rsplit(":", 1)
    if where.endswith(".py"):
        path = factory_file(spec)
        module_name = f"fairensemble_factory_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
        module = sys.modules.get(module_name)
        if module is None:
            loader = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(loader)
            sys.modules[module_name] = module
            try:
                loader.loader.exec_module(module)
            except Exception as err:
                del sys.modules[module_name]
                raise ConfigError(f"model.name: {where} cannot be imported: "
                                 f"{type(err).__name__}: {_first_line(err)}") from None
    else:
        try:
            module = importlib.import_module(where)
        except Exception as err:
            raise ConfigError(f"model.name: module {where!r} cannot be imported: "
                             f"{type(err).__name__}: {_first_line(err)}") from None
    builder = getattr(module, fn, None)
    if not callable(builder):
        raise ConfigError(f"model.name: {where} has no function {fn!r}")
    return builder


def create(name: str, num_classes: int, in_channels: int = 3, image_size: int = 224,
           **kw: Any) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs, initialised from torch's global RNG
    (wrap the call in ``torch.random.fork_rng`` + ``torch.manual_seed`` to seed it)."""
    from torch import nn

    if num_classes < 1:
        raise ConfigError(f"num_classes: expected a positive integer, got {num_classes}")
    builder = resolve(name)
    takes = _parameters(builder)
    context = {"in_channels": in_channels, "image_size": image_size}
    args = {k: v for k, v in context.items() if takes is None or k in takes}
    extra = sorted(k for k in kw if takes is not None and k not in takes)
    if extra:
        raise ConfigError(f"model {name!r}: unexpected arguments {extra}")
    try:
        net = builder(num_classes=num_classes, **args, **kw)
    except (TypeError, ValueError, RuntimeError) as err:
        if name in BUILTIN:
            raise
        raise ConfigError(f"model.name: {name} failed when called with num_classes="
                         f"{num_classes}: {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model.name: {name} returned a {type(net).__name__}, expected an "
                         "nn.Module")
    return net


def accepted(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` that builder ``name`` takes (config fields such as ``width`` apply to
    the models that have them)."""
    takes = _parameters(resolve(name))
    return dict(options) if takes is None else {k: v for k, v in options.items() if k in takes}


def head_name(net: nn.Module, name: str = "model") -> str:
    """The attribute holding ``net``'s classification head: its class's ``head_name``, else
    the first of fc / head / classifier it has."""
    from torch import nn

    declared = getattr(net, "head_name", None)
    if isinstance(declared, str) and hasattr(net, declared):
        return declared
    for attr in HEAD_NAMES:
        if isinstance(getattr(net, attr, None), nn.Module):
            return attr
    raise ConfigError(f"model.freeze: {name} has no classification head to replace: give its "
                     f"class a `head_name` attribute naming it, or call it one of "
                     f"{', '.join(HEAD_NAMES)}")


def _parameters(fn: Callable[..., Any]) -> set[str] | None:
    """The keyword names ``fn`` takes; None when it takes any (``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


__all__ = ["BUILTIN", "NAMES", "accepted", "check_name", "create", "factory_file", "head_name",
           "is_factory", "resolve"]
