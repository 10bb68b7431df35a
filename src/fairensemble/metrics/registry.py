"""The metric registry: every metric's declaration (name, direction, scope, needs) and the
look-ups the rest of the program uses (``names``, ``get``, ``labels``).

A metric registers with ``@register`` on its ``compute`` function (``functions.py``), which
declares it here and binds the standalone function the engine builds from it
(``engine.standalone``) under the compute's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from fairensemble.common.errors import InputError

# group labels group_metrics adds after the groups themselves
DERIVED_LABELS = ("overall", "gap", "worst")
# the group label of a between-group metric's one row
DISPARITY = "disparity"
# what a metric may need: predicted labels, probabilities, the individual members
NEEDS = frozenset({"labels", "probs", "members"})

# which way a metric is better
Direction = Literal["higher", "lower", "neither"]
# per group, or between groups (a disparity)
Scope = Literal["group", "between"]


@dataclass(frozen=True)
class Metric:
    """A registered metric.

    ``direction``: which way is better. ``scope``: ``"group"`` gives a value per slice (each
    group, ``overall``); ``"between"`` one value between groups (label ``"disparity"``), built
    from the per-group values of the metrics in ``uses``. ``needs``: what it is computed from,
    a subset of {"labels" (hard predictions suffice), "probs" (scores), "members" (the
    individual members of each draw)}. ``classes``: ``"any"`` or ``"binary"`` (NaN for C > 2).

    ``compute``: scope "group": ``compute(ctx) -> [R, L, D]``, or ``[R, L, D, K]`` for a
    one-vs-rest metric whose value is the mean over the K classes where it is defined (K = 1
    for binary); scope "between": ``compute(per_group) -> [R, D]`` or ``[R, D, K]``, with
    ``per_group[name]`` float [R, G, D, K], the per-class values of each metric in ``uses``.
    """

    name: str
    direction: Direction
    scope: Scope
    needs: frozenset[str]
    classes: Literal["any", "binary"]
    summary: str
    compute: Callable[..., np.ndarray]
    uses: tuple[str, ...] = ()
    function: Callable[..., np.ndarray] | None = None  # the standalone function (``bind``)

    def __call__(self, probs: np.ndarray, y: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        """The metric's standalone function (``metrics.accuracy(probs, y)`` and the like)."""
        if self.function is None:
            raise TypeError(f"metric {self.name!r} was declared without a standalone function")
        return self.function(probs, y, *args, **kwargs)


# every registered metric by name, in registration order
METRICS: dict[str, Metric] = {}


def declare(
    compute: Callable[..., np.ndarray],
    *,
    direction: Direction,
    needs: Iterable[str],
    summary: str,
    scope: Scope = "group",
    classes: Literal["any", "binary"] = "any",
    uses: Sequence[str] = (),
    name: str | None = None,
    bind: Callable[[Metric], Callable[..., np.ndarray]] | None = None,
) -> Metric:
    """Declare a metric: its ``compute`` (see ``Metric``) registered under the function's name
    (or ``name``); ``bind(metric)`` makes its standalone function."""
    needs = frozenset(needs)
    if not needs or not needs <= NEEDS:
        raise ValueError(f"needs: expected a non-empty subset of {sorted(NEEDS)}, got {needs}")
    missing = [u for u in uses if u not in METRICS]
    if (scope == "between") != bool(uses) or missing:
        raise ValueError(f"uses: a between-group metric combines registered metrics, got {uses}")
    key = name or compute.__name__
    if key in METRICS:
        raise ValueError(f"metric {key!r} is registered twice")
    metric = Metric(key, direction, scope, needs, classes, summary, compute, tuple(uses))
    if bind is not None:
        metric = replace(metric, function=bind(metric))
    METRICS[key] = metric
    return metric


def names(scope: Scope | None = None, needs_at_most: Iterable[str] | None = None) -> list[str]:
    """Registered metric names in declaration order, optionally only those of one ``scope`` or
    whose needs are within ``needs_at_most`` (e.g. ``{"labels"}``: computable from hard
    predictions)."""
    allowed = None if needs_at_most is None else frozenset(needs_at_most)
    return [
        m.name
        for m in METRICS.values()
        if (scope is None or m.scope == scope) and (allowed is None or m.needs <= allowed)
    ]


def get(name: str) -> Metric:
    """The registered metric ``name``; unknown names are a ValueError listing the known ones."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise InputError(f"metrics: expected names from {names()}, got {name!r}") from None


def labels(name: str, groups: Sequence[str]) -> list[str]:
    """The group labels the engine reports for metric ``name``: scope "group": the groups,
    ``overall``, ``gap`` and ``worst`` (no ``worst`` when direction is "neither"); scope
    "between": ``disparity``."""
    metric = get(name)
    if metric.scope == "between":
        return [DISPARITY]
    derived = [d for d in DERIVED_LABELS if d != "worst" or metric.direction != "neither"]
    return [*groups, *derived]


