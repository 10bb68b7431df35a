"""Validated configuration of a run: YAML in, pydantic models, resolved YAML out.

The run's sections live here, each field with its range; every data source declares its own
``dataset`` section in ``data/<source>.py`` and the union of them is built from the source
registry, as model names come from the model registry. Validation happens once, at load time,
and a failure is reported as one line naming the field (``ConfigError``).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from fairensemble import models
from fairensemble.common.errors import ConfigError
from fairensemble.common.schema import Fraction, NonNegativeInt, PositiveInt, Strict
from fairensemble.common.seeds import DIVERSITY_SOURCES
from fairensemble.data import sources
from fairensemble.metrics import get as metric_spec
from fairensemble.metrics import names as metric_names

# Which fields change what, declared once: the cell identity (plan.py), the evaluation spec
# and its cache (evaluation.py) and what `report --set` accepts (cli.py) derive from these.
# Every other field changes what is trained.
# fields that change how stored cells are evaluated or summarised, never what they trained
EVALUATION_FIELDS = ("metrics", "primary_metric", "ensemble.k", "ensemble.draws", "test_mix",
                     "analysis")
# fields that change no number at all: where and how a run executes, what it is called, where
# decoded images are cached and how many processes decode them, which device trains
RUNTIME_FIELDS = ("executor", "name", "dataset.cache_dir", "dataset.num_workers",
                  "train.device")


def _rankable(metric: str) -> bool:
    """A metric optima and verdicts can use: per group, with a better direction."""
    try:
        spec = metric_spec(metric)
    except ValueError:
        return False
    return spec.scope == "group" and spec.direction != "neither"


# ----------------------------------------------------------------------------- datasets

# one section per registered data source (data/<source>.py declares it), told apart by `kind`
_SOURCES = sources()
DatasetConfig = Annotated[Union[tuple(s.config for s in _SOURCES.values())],  # noqa: UP007
                          Field(discriminator="kind")]
DATASET_KINDS = ("synthetic", *sorted(k for k in _SOURCES if k != "synthetic"))  # default first
SyntheticData = _SOURCES["synthetic"].config  # the default dataset

# ----------------------------------------------------------------------------- model & training


class ModelConfig(Strict):
    # a built-in name, or a factory 'package.module:function' / 'path/to/file.py:function'
    name: str = "mlp"
    hidden: list[PositiveInt] = [64, 64]
    activation: Literal["relu", "tanh", "gelu", "leaky_relu"] = "relu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    width: PositiveInt = 32  # base channel width of the small CNN
    # a state dict in torchvision's/timm's key layout (.pth, .pt or .safetensors) that every
    # member starts from; the head is kept when it has the task's class count
    weights: Annotated[str, Field(min_length=1)] | None = None
    freeze_norm: bool = False  # batch norm in eval mode while training: keeps loaded statistics
    # backbone: the image model's features are computed once per run and the members are
    # heads (stacked MLPs with `head_hidden` layers) trained on them
    freeze: Literal["none", "backbone"] = "none"
    head_hidden: list[PositiveInt] = []

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return models.check_name(v)

    @model_validator(mode="after")
    def _weights_fit_an_image_model(self) -> ModelConfig:
        if self.weights is not None and self.name == "mlp":
            raise ValueError(
                "model.weights: pretrained weights load into image models (cnn, resnet18/34/50,"
                " vit_tiny, vit_small or a factory), got model.name 'mlp'"
            )
        if self.freeze == "backbone" and self.name == "mlp":
            raise ValueError("model.freeze: 'backbone' freezes an image model's backbone, got "
                             "model.name 'mlp' (which has none)")
        return self

    @property
    def stacked(self) -> bool:
        """Whether members train with the stacked trainer: MLPs, and heads over frozen
        features."""
        return self.name == "mlp" or self.freeze == "backbone"

    def head(self) -> ModelConfig:
        """The MLP a member is when the backbone is frozen (its input: the features)."""
        return ModelConfig(name="mlp", hidden=list(self.head_hidden),
                           activation=self.activation)


class EarlyStopping(Strict):
    patience: PositiveInt = 10
    metric: Literal["loss", "accuracy", "auc"] = "loss"
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1


class TrainConfig(Strict):
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    epochs: PositiveInt = 100
    batch_size: PositiveInt = 128
    schedule: Literal["constant", "cosine", "step"] = "constant"
    step_size: PositiveInt = 30
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    early_stopping: EarlyStopping | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # bf16: autocast to bfloat16 (CPU and CUDA) with channels-last memory for convolutional
    # nets; applies to the loop trainer and to computing frozen features (the stacked MLP
    # trainer stays fp32)
    precision: Literal["fp32", "bf16"] = "fp32"
    save_models: bool = False
    # where members of a cell differ; a source left out is shared (every member uses member
    # 0's stream). The default is what members always differed by.
    diversity: list[str] = ["init", "order", "augment"]

    @field_validator("diversity", mode="before")
    @classmethod
    def _sources(cls, v: Any) -> list[str]:
        """Distinct known names, put in the canonical order so that the same set gives the
        same cell identity however it is written."""
        known = isinstance(v, list) and all(isinstance(s, str) and s in DIVERSITY_SOURCES
                                            for s in v)
        if not known or len(set(v)) != len(v):
            raise ValueError(
                f"train.diversity: expected distinct names from {list(DIVERSITY_SOURCES)},"
                f" got {v!r}"
            )
        return [s for s in DIVERSITY_SOURCES if s in v]


K_LADDER = (1, 2, 3, 5, 10, 20, 50, 100)


class EnsembleConfig(Strict):
    members: PositiveInt = 20
    # default: the sizes of K_LADDER up to `members`, plus `members` itself
    k: list[PositiveInt] | None = None
    draws: PositiveInt = 50

    def sizes(self) -> list[int]:
        """The ensemble sizes to evaluate: configured (or default) ks plus 1 and E, sorted."""
        ks = self.k if self.k is not None else [k for k in K_LADDER if k <= self.members]
        return sorted({*ks, 1, self.members})


class ExecutorConfig(Strict):
    kind: Literal["serial", "local", "ray"] = "local"
    # local: pool size; ray with a local instance (address null): the instance's CPUs are
    # workers x cpus_per_unit
    workers: PositiveInt = 2
    # torch threads per unit; default: cores / workers (local), cpus_per_unit (ray). Image
    # models on CPU give bitwise-identical numbers only for the same thread count.
    threads: PositiveInt | None = None
    address: str | None = None  # ray: null = start a local instance; "auto" or ray://host:port
    cpus_per_unit: Annotated[float, Field(gt=0.0)] = 1.0
    gpus_per_unit: Annotated[float, Field(ge=0.0)] = 0.0  # fractions share a GPU
    max_retries: NonNegativeInt = 3  # ray: retries of a unit whose worker died


class AnalysisConfig(Strict):
    """How results are summarised; none of it changes what is trained."""

    # intervals: t-intervals over replicates, or a bootstrap over test samples (seeded), which
    # also works with a single replicate
    ci: Literal["replicates", "bootstrap"] = "replicates"
    n_boot: Annotated[int, Field(ge=20)] = 200
    # group-specific thresholds fitted on the validation split (binary tasks with a val split)
    post: list[Literal["threshold_eo", "threshold_dp"]] = ["threshold_eo", "threshold_dp"]




class RunConfig(Strict):
    name: str = "run"
    seed: NonNegativeInt = 0
    dataset: DatasetConfig = Field(default_factory=SyntheticData)
    ratio_group: str | None = None
    ratios: list[Fraction] = [round(0.1 * i, 1) for i in range(11)]
    mixes: list[dict[str, Fraction]] | None = None
    train_size: PositiveInt = 2000
    label_balance: Literal["keep", "balanced"] = "keep"
    replicates: PositiveInt = 3
    grid: dict[str, list[Any]] = {}
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    # default: every registered metric (metrics.py is the one list)
    metrics: list[str] = Field(default_factory=lambda: metric_names())
    # default: accuracy if listed, else the first per-group metric with a direction
    primary_metric: str | None = None
    test_mix: Literal["balanced", "natural"] = "balanced"
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if not self.ratios:
            raise ValueError("ratios: expected at least one value in [0, 1]")
        ks = self.ensemble.k or []
        if any(k > self.ensemble.members for k in ks):
            raise ValueError(
                f"ensemble.k: every k must be <= ensemble.members ({self.ensemble.members}),"
                f" got {ks}; leave k out to follow members"
            )
        if not self.metrics:
            raise ValueError("metrics: expected at least one metric name")
        known = metric_names()
        for i, name in enumerate(self.metrics):
            if name not in known:
                raise ValueError(f"metrics[{i}]: expected one of {known}, got {name!r}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics: expected distinct names, got {self.metrics}")
        rankable = [m for m in self.metrics if _rankable(m)]
        if not rankable:
            raise ValueError("metrics: expected at least one per-group metric with a direction "
                             f"(one of {[m for m in known if _rankable(m)]})")
        if self.primary_metric is not None and not _rankable(self.primary_metric):
            raise ValueError(
                f"primary_metric: expected a per-group metric that is better higher or lower "
                f"(one of {[m for m in known if _rankable(m)]}), got {self.primary_metric!r}")
        if self.primary_metric is not None and self.primary_metric not in self.metrics:
            raise ValueError(
                f"primary_metric: expected one of metrics {self.metrics},"
                f" got {self.primary_metric!r}"
            )
        if self.mixes is not None:
            for i, mix in enumerate(self.mixes):
                total = sum(mix.values())
                if abs(total - 1.0) > 1e-6:
                    raise ValueError(f"mixes[{i}]: shares must sum to 1, got {total:g}")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key}: expected a non-empty list of values")
        return self

    # -- helpers used across the pipeline ------------------------------------------------

    def ks(self) -> list[int]:
        """The ensemble sizes to evaluate: configured (or default) ks plus 1 and E, sorted."""
        return self.ensemble.sizes()

    @property
    def primary(self) -> str:
        """The metric optima and verdicts use: ``primary_metric``, or accuracy if listed,
        else the first metric."""
        if self.primary_metric is not None:
            return self.primary_metric
        if "accuracy" in self.metrics:
            return "accuracy"
        return next(m for m in self.metrics if _rankable(m))

    def grid_points(self) -> list[dict[str, Any]]:
        """The cartesian product of ``grid``, as a list of {field: value} dicts."""
        if not self.grid:
            return [{}]
        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.grid.values())]

    def at(self, point: dict[str, Any]) -> RunConfig:
        """This config with one grid point's values applied (validated)."""
        if not point:
            return self
        data = self.model_dump(mode="json")
        for key, value in point.items():
            set_path(data, key, value)
        data["grid"] = {}
        return validate(data)

    def mix_labels(self) -> list[float]:
        """The sweep's coordinate per mix: the ratio, or the index of an explicit mix."""
        if self.mixes is not None:
            return [float(i) for i in range(len(self.mixes))]
        return list(self.ratios)


# ----------------------------------------------------------------------------- loading


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted='a.b'``, creating dicts as needed. Under
    ``grid`` the rest is one key (a grid key names a dotted field): ``grid.dataset.label_noise``
    sets ``data['grid']['dataset.label_noise']``."""
    parts = dotted.split(".")
    if parts[0] == "grid" and len(parts) > 2:
        parts = ["grid", ".".join(parts[1:])]
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {part!r} is not a section that holds fields")
        node = nxt
    node[parts[-1]] = value


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ""
    for part in first["loc"]:
        if _is_union_tag(part):
            continue
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        if ":" in msg.split(" ")[0]:  # the message already names its field
            return msg
        return f"{loc}: {msg}" if loc else msg
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if first["type"] == "union_tag_invalid":
        kinds = ", ".join(DATASET_KINDS)
        return f"{loc}.kind: expected one of {kinds}, got {first['input'].get('kind')!r}"
    got = first.get("input")
    got_txt = "" if isinstance(got, dict) else f", got {got!r}"
    return f"{loc}: {msg.lower()}{got_txt}" if loc else msg


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in DATASET_KINDS


def _default_kind(data: dict) -> dict:
    """A ``dataset`` section without ``kind`` is synthetic, the built-in default."""
    ds = data.get("dataset")
    if isinstance(ds, dict) and "kind" not in ds:
        data = {**data, "dataset": {**ds, "kind": "synthetic"}}
    return data


def validate(data: Any) -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping of fields, got {type(data).__name__}")
    data = _default_kind(data)
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    _check_grid_fields(cfg, data)
    return cfg


def _check_grid_fields(cfg: RunConfig, data: dict) -> None:
    base = cfg.model_dump(mode="json")
    for key, values in cfg.grid.items():
        node: Any = base
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"grid.{key}: not a config field")
            node = node[part]
        for value in values:
            trial = copy.deepcopy(data)
            trial["grid"] = {}
            set_path(trial, key, value)
            try:
                RunConfig.model_validate(_default_kind(trial))
            except ValidationError as err:
                raise ConfigError(f"grid.{key}={value!r}: {_describe(err)}") from None


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


# the configs shipped with the package (configs/ in the repository is a link to them)
CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_config(name: str) -> dict[str, Any]:
    """A shipped config (``configs/<name>.yaml``) as the mapping its YAML holds."""
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


# what `report --set` may change: anything but what was trained
REPORT_FIELDS = (*EVALUATION_FIELDS, *RUNTIME_FIELDS)


def check_evaluation_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """``--set`` lines that change only how stored cells are evaluated or run (``report``
    takes no other: a changed training needs ``run``)."""
    for text in overrides:
        key = parse_override(text)[0]
        if not any(key == f or key.startswith(f + ".") for f in REPORT_FIELDS):
            raise ConfigError(
                f"--set {key}: changes what was trained; `report` takes only evaluation "
                f"fields ({', '.join(REPORT_FIELDS)}); use `run` to train a changed config"
            )


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults when ``path`` is None), apply ``key=value`` overrides."""
    data: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{p}: not valid YAML{where}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of fields at the top level")
    for text in overrides or []:
        key, value = parse_override(text)
        set_path(data, key, value)
    return validate(data)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
