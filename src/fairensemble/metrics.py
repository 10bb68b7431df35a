"""One registry of classification metrics, per group and between groups, vectorised over draws.

Every metric is declared once, with ``@register``: a small function of a ``Context`` (one block
of D draws of averaged ensemble probabilities ``probs`` float [D, n, C], labels ``y`` int [n],
classes 0..C-1) that returns one value per slice and draw. The slices are each group's samples
and ``overall`` (groups combined with the ``test_mix`` weights), under R sets of sample weights
(R = 1, or bootstrap resamples as multinomial counts). Everything else comes from that one
function: per-group values, ``overall``, ``gap`` and ``worst`` (``group_metrics``), the
between-group disparities built on per-group rates (SPD, EOD, AOD, equalised odds), and the
standalone ``accuracy(probs, y, weight=None) -> [D]`` style functions. There is no Python loop
over draws.

Conventions, shared by all metrics: predictions are the argmax over classes, ties going to the
lowest class (``numpy.argmax``); binary means C = 2 with class 1 positive; for C > 2 the
one-vs-rest metrics are the macro average over the classes where they are defined (fairlearn's
and scikit-learn's "macro"); an undefined value (0/0) is NaN, never 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

# group labels group_metrics adds after the groups themselves, and the one label of a
# between-group metric
DERIVED_LABELS = ("overall", "gap", "worst")
DISPARITY = "disparity"
NEEDS = frozenset({"labels", "probs", "members"})
TEST_MIXES = ("balanced", "natural")
ECE_BINS = 15
# sklearn.calibration.calibration_curve(strategy="uniform") bin edges
_ECE_EDGES = np.linspace(0.0, 1.0, ECE_BINS + 1)
_LOG_EPS = np.finfo(np.float64).eps  # sklearn.metrics.log_loss clips float64 to [eps, 1 - eps]

Direction = Literal["higher", "lower", "neither"]
Scope = Literal["group", "between"]


# ----------------------------------------------------------------------------- the registry


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
    Calling a Metric is its standalone function (see ``register``).
    """

    name: str
    direction: Direction
    scope: Scope
    needs: frozenset[str]
    classes: Literal["any", "binary"]
    summary: str
    compute: Callable[..., np.ndarray]
    uses: tuple[str, ...] = ()

    def __call__(self, probs: np.ndarray, y: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        return _standalone(self)(probs, y, *args, **kwargs)


METRICS: dict[str, Metric] = {}


def register(
    *,
    direction: Direction,
    needs: Iterable[str],
    summary: str,
    scope: Scope = "group",
    classes: Literal["any", "binary"] = "any",
    uses: Sequence[str] = (),
    name: str | None = None,
) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Declare a metric: decorates its ``compute`` (see ``Metric``), registers it under the
    function's name, and returns the standalone function of the same name and docstring:
    scope "group": ``f(probs, y, weight=None, *, members=None) -> [D]`` (the metric on all
    samples, weighted by ``weight``); scope "between": ``f(probs, y, g, weight=None) -> [D]``
    with ``g`` int [n] group codes 0..G-1."""
    needs = frozenset(needs)
    if not needs or not needs <= NEEDS:
        raise ValueError(f"needs: expected a non-empty subset of {sorted(NEEDS)}, got {needs}")
    missing = [u for u in uses if u not in METRICS]
    if (scope == "between") != bool(uses) or missing:
        raise ValueError(f"uses: a between-group metric combines registered metrics, got {uses}")

    def decorate(compute: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        key = name or compute.__name__
        if key in METRICS:
            raise ValueError(f"metric {key!r} is registered twice")
        metric = Metric(key, direction, scope, needs, classes, summary, compute, tuple(uses))
        METRICS[key] = metric
        return _standalone(metric)

    return decorate


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
        raise ValueError(f"metrics: expected names from {names()}, got {name!r}") from None


def labels(name: str, groups: Sequence[str]) -> list[str]:
    """The group labels the engine reports for metric ``name``: scope "group": the groups,
    ``overall``, ``gap`` and ``worst`` (no ``worst`` when direction is "neither"); scope
    "between": ``disparity``."""
    metric = get(name)
    if metric.scope == "between":
        return [DISPARITY]
    derived = [d for d in DERIVED_LABELS if d != "worst" or metric.direction != "neither"]
    return [*groups, *derived]


# ----------------------------------------------------------------------------- slices


@dataclass(frozen=True, eq=False)
class Slices:
    """Where metrics are evaluated: G groups, each a contiguous range of samples, then
    ``overall``, the groups combined with weights; slice l = 0..G-1 is group l, l = G overall.

    ``bounds`` int [G + 1]: group j holds samples ``bounds[j]:bounds[j + 1]`` (may be empty).
    ``overall`` float [G]: the weight of a group-j sample in the overall slice.
    ``weights`` [R, n]: R replicates of sample weights, integer counts (a bootstrap: exact
    integer arithmetic) or floats, or None for one replicate of unit weights. A slice's
    weighted sum of x is :math:`\\sum_i u_{ri} x_i` over the group, and
    :math:`\\sum_j o_j \\sum_{i \\in j} u_{ri} x_i` overall.
    """

    bounds: np.ndarray
    overall: np.ndarray
    weights: np.ndarray | None = None

    @classmethod
    def for_groups(cls, counts: np.ndarray, test_mix: str) -> Slices:
        """Slices of groups with ``counts`` samples each, in that order. ``test_mix``:
        "balanced" weights a group-j sample 1 / (G' n_j) overall (every group with samples
        counts equally; G' of them), "natural" weights every sample 1."""
        counts = np.asarray(counts, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        if test_mix == "balanced":
            with np.errstate(divide="ignore"):
                overall = np.where(counts > 0, 1.0 / (np.count_nonzero(counts) * counts), 0.0)
        else:
            overall = np.ones(len(counts))
        return cls(bounds, overall)

    @classmethod
    def whole(cls, n: int, weight: np.ndarray | None = None) -> Slices:
        """One group of all n samples (the standalone functions), weighted by ``weight``."""
        return cls(np.array([0, n]), np.ones(1), None if weight is None else weight[None])

    @property
    def G(self) -> int:
        return len(self.bounds) - 1

    @property
    def R(self) -> int:
        return 1 if self.weights is None else len(self.weights)

    @cached_property
    def ranges(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in zip(self.bounds[:-1], self.bounds[1:])]

    @cached_property
    def group_codes(self) -> np.ndarray:
        """Each sample's group, int [n]."""
        return np.repeat(np.arange(self.G), np.diff(self.bounds))

    @cached_property
    def float_weights(self) -> np.ndarray | None:
        return None if self.weights is None else self.weights.astype(np.float64, copy=False)

    @cached_property
    def totals(self) -> np.ndarray:
        """Total weight of each slice, float [R, L, 1]."""
        n = int(self.bounds[-1])
        return self.sums(np.ones((1, n), dtype=bool))

    def combine(self, per_group: np.ndarray) -> np.ndarray:
        """[R, G, ...] per-group sums -> [R, L, ...] with the overall slice appended."""
        o = self.overall.reshape(1, -1, *([1] * (per_group.ndim - 2)))
        return np.concatenate([per_group, (per_group * o).sum(axis=1, keepdims=True)], axis=1)

    def sums(self, x: np.ndarray) -> np.ndarray:
        """Weighted sums over each slice: x [m, n, ...] -> float [R, L, m, ...]. The same
        numbers go through the same float operations whatever their memory layout (a
        member's and a one-member ensemble's Brier sums are bit-identical)."""
        x = np.ascontiguousarray(x)
        if self.weights is None:
            parts = [x[:, a:b].sum(axis=1, dtype=np.float64) for a, b in self.ranges]
            return self.combine(np.stack(parts)[None])
        # einsum's own loop, not BLAS: OpenBLAS threads spinning on a busy machine made these
        # small products ~200x slower
        m, rest = x.shape[0], x.shape[2:]
        parts = []
        for a, b in self.ranges:
            xg = np.moveaxis(x[:, a:b], 1, -1).reshape(m * int(np.prod(rest)), b - a)
            xg = xg.astype(np.float64, copy=False)
            parts.append(np.einsum("rn,kn->rk", self.float_weights[:, a:b], xg)
                         .reshape(-1, m, *rest))
        return self.combine(np.stack(parts, axis=1))

    def binned(self, keys: np.ndarray, values: np.ndarray, K: int) -> np.ndarray:
        """Weighted sums of ``values`` [m, n] per slice and bin ``keys`` int [m, n] in 0..K-1:
        float [R, L, m, K]."""
        m, n = keys.shape
        G = self.G
        if self.weights is None:
            full = keys + K * (self.group_codes + G * np.arange(m)[:, None])
            per = np.bincount(full.ravel(), weights=values.ravel(), minlength=m * G * K)
            return self.combine(per.reshape(m, G, K).transpose(1, 0, 2)[None])
        from scipy import sparse

        parts = []
        for a, b in self.ranges:
            # column i of [m*K, n_j] holds sample i's value of each draw d in row d*K + key
            rows = (keys[:, a:b] + K * np.arange(m)[:, None]).T.ravel()
            A = sparse.csc_array(
                (values[:, a:b].T.ravel(), rows, np.arange(0, m * (b - a) + 1, m)),
                shape=(m * K, b - a),
            )
            parts.append((A @ self.float_weights[:, a:b].T).reshape(m, K, -1).transpose(2, 0, 1))
        return self.combine(np.stack(parts, axis=1))


# ----------------------------------------------------------------------------- members


@dataclass(frozen=True)
class Members:
    """The ensemble members behind D draws, for the diversity metrics.

    ``pred`` int [E, n]: each member's prediction (argmax, ties to the lowest class).
    ``brier`` float [E, n]: each member's per-sample Brier score (as ``brier``).
    ``subsets`` int [D, k]: the members averaged in each draw. ``n_classes``: C.
    """

    pred: np.ndarray
    brier: np.ndarray
    subsets: np.ndarray
    n_classes: int

    @classmethod
    def from_probs(cls, member_probs: np.ndarray, y: np.ndarray,
                   subsets: np.ndarray | None = None) -> Members:
        """From member probabilities float [E, n, C] and labels int [n]."""
        member_probs = np.asarray(member_probs)
        empty = np.empty((0, 1), dtype=np.int64)
        return cls(predict(member_probs), _sample_brier(member_probs, y),
                   empty if subsets is None else np.asarray(subsets), member_probs.shape[2])

    def for_draws(self, subsets: np.ndarray) -> Members:
        """The same members behind other draws."""
        return replace(self, subsets=np.asarray(subsets))

    def take(self, index: np.ndarray) -> Members:
        """The same members on the samples ``index``, in that order."""
        return replace(self, pred=self.pred[:, index], brier=self.brier[:, index])

    @cached_property
    def onehot(self) -> np.ndarray:
        """bool [E, n, C]: member e predicts class c for sample i."""
        return self.pred[..., None] == np.arange(self.n_classes)


# ----------------------------------------------------------------------------- the context


def predict(probs: np.ndarray) -> np.ndarray:
    """Argmax predictions, ties to the lowest class: int8 [..., n] from [..., n, C]."""
    C = probs.shape[-1]
    if C == 2:  # argmax of two, without argmax's slow last-axis loop
        return (probs[..., 1] > probs[..., 0]).view(np.int8)
    return probs.argmax(axis=-1).astype(np.int8 if C <= 127 else np.int64)


def ece_bin(conf: np.ndarray) -> np.ndarray:
    """ECE bin of each confidence in [0, 1]: int16, the number of inner edges of
    ``np.linspace(0, 1, 16)`` below it, i.e. ``np.searchsorted(edges[1:-1], conf)`` as
    ``calibration_curve`` bins, at half its cost: floor(15 conf) corrected against the edges
    themselves where rounding put a value near an edge in the wrong bin."""
    b = (conf * ECE_BINS).astype(np.int16)
    np.minimum(b, ECE_BINS - 1, out=b)
    b -= (conf <= _ECE_EDGES[b]) & (b > 0)
    b += (conf > _ECE_EDGES[b + 1]) & (b < ECE_BINS - 1)
    return b


def _sample_brier(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample Brier score float64 [..., n]: binary :math:`(p_{i1} - y_i)^2`, C > 2
    :math:`\\sum_c (p_{ic} - [y_i = c])^2`."""
    C = probs.shape[-1]
    if C == 2:
        return (probs[..., 1].astype(np.float64) - y) ** 2
    sq = np.square(probs, dtype=np.float64).sum(axis=-1)
    p_true = np.take_along_axis(probs, np.broadcast_to(y, sq.shape)[..., None], axis=-1)
    return sq - 2.0 * p_true[..., 0] + 1.0


def _take_rows(a: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``a`` [n] or [D, n] reordered row by row by ``order`` [D, n]."""
    if a.ndim == 1:
        return np.take(a, order)
    D, n = order.shape
    return np.take(a.ravel(), order + (np.arange(D) * n)[:, None])


class Context:
    """One block of D draws on one set of slices, with the intermediates several metrics share
    (predictions, correctness, confidence, per-class score orders, confusion counts...)
    computed lazily, once.

    ``y`` int [n], or [D, n] for labels that differ by draw (each member's own hold-out);
    ``probs`` float [D, n, C] or None with ``pred`` int [D, n] (hard predictions only, e.g.
    after post-processing: metrics that need scores are then refused); ``members``: what the
    diversity metrics need. Inputs are trusted: validation happens at the public boundary.
    """

    def __init__(
        self,
        y: np.ndarray,
        slices: Slices,
        *,
        probs: np.ndarray | None = None,
        pred: np.ndarray | None = None,
        n_classes: int | None = None,
        members: Members | None = None,
        _draw_cache: dict | None = None,
    ) -> None:
        if probs is None and (pred is None or n_classes is None):
            raise ValueError("probs: expected probabilities, or pred with n_classes")
        self.y, self.slices, self.probs, self.members = y, slices, probs, members
        shape = probs.shape if probs is not None else (*pred.shape, n_classes)
        self.D, self.n, self.C = shape
        self._draw: dict = {} if _draw_cache is None else _draw_cache
        if pred is not None:
            self._draw["pred"] = pred
        self._slice: dict = {}

    def reweighted(self, weights: np.ndarray) -> Context:
        """The same draws under other sample weights [R, n]; shares every per-draw cache."""
        return Context(self.y, replace(self.slices, weights=weights), probs=self.probs,
                       pred=self._draw.get("pred"), n_classes=self.C, members=self.members,
                       _draw_cache=self._draw)

    def _memo(self, cache: dict, key: Any, fn: Callable[[], Any]) -> Any:
        if key not in cache:
            cache[key] = fn()
        return cache[key]

    # -- per draw (independent of the slices' weights)

    @property
    def pred(self) -> np.ndarray:
        """Predictions int [D, n]."""
        return self._memo(self._draw, "pred", lambda: predict(self.probs))

    @property
    def pred1(self) -> np.ndarray:
        """bool [D, n]: predicted class 1 (C = 2)."""
        pred = self.pred
        return self._memo(self._draw, "pred1", lambda: (
            pred.view(bool) if pred.dtype == np.int8 else pred == 1))

    @property
    def correct(self) -> np.ndarray:
        """bool [D, n]: the prediction is right."""
        if self.C == 2:
            return self._memo(self._draw, "correct", lambda: self.pred1 == self.is_class(1))
        return self._memo(self._draw, "correct", lambda: self.pred == self.y)

    def is_class(self, c: int) -> np.ndarray:
        """bool [n] or [D, n]: y == c."""
        return self._memo(self._draw, ("is_class", c), lambda: self.y == c)

    @property
    def conf(self) -> np.ndarray:
        """Top-class probability float [D, n]."""
        p = self.probs
        return self._memo(self._draw, "conf", lambda: (
            np.maximum(p[:, :, 0], p[:, :, 1]) if self.C == 2 else p.max(axis=2)))

    @property
    def sample_brier(self) -> np.ndarray:
        return self._memo(self._draw, "brier", lambda: _sample_brier(self.probs, self.y))

    def sorted_codes(self, c: int) -> tuple[np.ndarray, np.ndarray, _Ties | None]:
        """Samples sorted by the score of class c, per draw: (order int [D, n], code int8
        [D, n] = 2 * group + [y == c] in that order, ties in the sorted scores or None)."""

        def build() -> tuple[np.ndarray, np.ndarray, _Ties | None]:
            scores = np.ascontiguousarray(self.probs[:, :, c])  # argsort of a view is slower
            order = np.argsort(scores, axis=1)
            s = _take_rows(scores, order)
            code = (2 * self.slices.group_codes).astype(np.int8 if self.slices.G < 64
                                                        else np.int64)
            code = code + self.is_class(c)
            return order, _take_rows(code, order), _Ties.find(s)

        return self._memo(self._draw, ("sorted", c), build)

    @property
    def votes(self) -> np.ndarray:
        """How many of the draw's members predict each class: int [D, n, C]; for C = 2 only
        class 1's count, [D, n, 1] (class 0 gets the rest)."""

        def build() -> np.ndarray:
            m = self.members
            k = m.subsets.shape[1]
            member = m.pred.view(np.uint8)[..., None] if self.C == 2 else m.onehot
            total = member[m.subsets[:, 0]].astype(np.uint8 if k < 256 else np.int64)
            for j in range(1, k):
                total += member[m.subsets[:, j]]
            return total

        return self._memo(self._draw, "votes", build)

    # -- per slice

    @property
    def totals(self) -> np.ndarray:
        """Total weight of each slice, [R, L, 1]."""
        return self.slices.totals

    @property
    def class_totals(self) -> np.ndarray:
        """Weight of class c in each slice, [R, L, 1 or D, C]."""

        def build() -> np.ndarray:
            if self.y.ndim == 1:
                onehot = (self.y[:, None] == np.arange(self.C))[None]
            else:
                onehot = self.y[:, :, None] == np.arange(self.C)
            return self.slices.sums(onehot)

        return self._memo(self._slice, "class_totals", build)

    @property
    def confusion(self) -> tuple[np.ndarray, np.ndarray]:
        """(predicted, hits), each float [R, L, D, C]: the weight of the samples predicted as
        class c, and of those predicted c whose label is c."""

        def build() -> tuple[np.ndarray, np.ndarray]:
            if self.C == 2:  # class 0 follows from class 1 and the totals
                p1 = self.slices.sums(self.pred1)
                h1 = self.slices.sums(self.correct & self.pred1)
                negatives = self.class_totals[..., 0]
                return (np.stack([self.totals - p1, p1], axis=-1),
                        np.stack([negatives - (p1 - h1), h1], axis=-1))
            onehot = self.pred[:, :, None] == np.arange(self.C)
            labels = self.y[..., None] == np.arange(self.C)  # [n, C] or [D, n, C]
            return self.slices.sums(onehot), self.slices.sums(onehot & labels)

        return self._memo(self._slice, "confusion", build)

    def value(self, name: str) -> np.ndarray:
        """Metric ``name``'s compute on this context, as returned (per class where one-vs-rest)."""
        return self._memo(self._slice, ("value", name), lambda: METRICS[name].compute(self))

    def pair_counts(self, c: int) -> np.ndarray:
        """Weighted Mann-Whitney pair counts for class c against the rest, float [R, G, G, D]:
        ``M[r, j, h, d]`` = :math:`\\sum_{i \\in P_j} \\sum_{l \\in N_h} u_{ri} u_{rl}
        ([s_l < s_i] + \\tfrac12 [s_l = s_i])`, with P_j the class-c samples of group j, N_h
        the others of group h and s the draw's class-c scores.

        In score order, every positive is owed the weight of each group's negatives below its
        tie group (equal scores) plus half of those within it. Unit weights: integer running
        counts over the sorted samples. Sample weights (labels the same in every draw): each
        group's positives and negatives in score order (the same number in every draw), the
        running weight of the negatives read at each positive's count of negatives below and
        through its tie group. Integer weights (bootstrap counts) stay exact integers.
        """
        return self._memo(self._slice, ("pairs", c), lambda: _pair_counts(self, c))

    def negatives_below(self, c: int) -> _Ranks:
        """Where class c's positives stand among each group's negatives (see ``_Ranks``)."""
        return self._memo(self._draw, ("ranks", c), lambda: _Ranks(self, c))


class _Ranks:
    """Where class c's positives stand among each group's negatives, per draw, in score order.

    ``running[h]`` int32 [D, n]: group h's negatives at or before each sorted position (at a
    positive: those scoring below it, or tied with it and sorted first). ``is_pos[j]`` bool
    [D, n]: group j's positives. ``tied[j]``: None, or group j's positives in tie groups as
    (flat positions [T], their draw [T], ``below`` [G, T] and ``upto`` [G, T], the negatives
    of each group below the tie group and below or within it).
    """

    def __init__(self, ctx: Context, c: int) -> None:
        order, code, ties = ctx.sorted_codes(c)
        self.order, self.code, self.D = order, code, ctx.D
        G = ctx.slices.G
        self.running = [np.cumsum(code == 2 * h, axis=1, dtype=np.int32) for h in range(G)]
        self.is_pos = [code == 2 * j + 1 for j in range(G)]
        self.tied: list[tuple | None] = [None] * G
        if ties is None:
            return
        for j in range(G):
            tied = self.is_pos[j].ravel()[ties.at]
            at, q = ties.at[tied], ties.group[tied]
            first, last = ties.at[ties.first[q]], ties.at[ties.last[q]]
            first_neg = [code.ravel()[first] == 2 * h for h in range(G)]
            below = np.array([r.ravel()[first] - f for r, f in zip(self.running, first_neg)])
            upto = np.array([r.ravel()[last] for r in self.running])
            self.tied[j] = (at, ties.row[tied], below, upto)

    def twice_unit_pairs(self) -> np.ndarray:
        """Twice the unit-weight pair counts, [G, G, D]: each positive is owed below + upto of
        each group's negatives; untied, both are its running count."""
        G = len(self.running)
        out = np.empty((G, G, self.D))
        for j, h in itertools.product(range(G), range(G)):
            out[j, h] = 2 * np.where(self.is_pos[j], self.running[h], 0).sum(axis=-1,
                                                                           dtype=np.int64)
            if self.tied[j] is not None:
                at, row, below, upto = self.tied[j]
                extra = below[h] + upto[h] - 2 * self.running[h].ravel()[at].astype(np.int64)
                out[j, h] += np.bincount(row, weights=extra, minlength=self.D)
        return out

    @cached_property
    def compact(self) -> tuple[list, list, list, list]:
        """For sample weights (labels the same in every draw, so every draw has the same
        number of each): group j's positives ``pos[j]`` and group h's negatives ``neg[h]`` as
        sample ids in score order, [D, P_j] / [D, N_h]; ``below[j][h]`` / ``upto[j][h]`` int
        [D, P_j], each positive's count of group h's negatives below / through its tie
        group."""
        G, D = len(self.running), self.D
        neg = [self.order[self.code == 2 * h].reshape(D, -1) for h in range(G)]
        pos, below, upto = [], [], []
        for j in range(G):
            is_pos = self.is_pos[j]
            pos.append(self.order[is_pos].reshape(D, -1))
            lo = [r[is_pos].reshape(D, -1) for r in self.running]
            hi = lo
            if self.tied[j] is not None:
                at, row, b, u = self.tied[j]
                rank = (np.cumsum(is_pos, axis=1) - 1).ravel()[at]  # among the row's positives
                hi = [a.copy() for a in lo]
                for h in range(G):
                    lo[h][row, rank], hi[h][row, rank] = b[h], u[h]
            below.append(lo)
            upto.append(hi)
        return pos, neg, below, upto


@dataclass(frozen=True)
class _Ties:
    """Tie groups (runs of equal scores) in rows of sorted scores [D, n], in flat positions:
    ``at`` int [T] the tied positions (sorted), ``first`` / ``last`` [Q] the index into ``at``
    of each tie group's first / last position, ``group`` [T] each tied position's tie group,
    ``row`` [T] its draw."""

    at: np.ndarray
    first: np.ndarray
    last: np.ndarray
    group: np.ndarray
    row: np.ndarray

    @classmethod
    def find(cls, s: np.ndarray) -> _Ties | None:
        D, n = s.shape
        same_as_prev = np.zeros((D, n), dtype=bool)
        np.equal(s[:, 1:], s[:, :-1], out=same_as_prev[:, 1:])
        if not same_as_prev.any():
            return None
        tied = same_as_prev.copy()
        tied[:, :-1] |= same_as_prev[:, 1:]
        at = np.flatnonzero(tied)
        starts = ~same_as_prev.ravel()[at]
        first = np.flatnonzero(starts)
        last = np.append(first[1:], len(at)) - 1
        return cls(at, first, last, np.cumsum(starts) - 1, at // n)


def _pair_counts(ctx: Context, c: int) -> np.ndarray:
    ranks = ctx.negatives_below(c)
    w = ctx.slices.weights
    if w is None:
        return ranks.twice_unit_pairs()[None] / 2.0
    if ctx.y.ndim != 1:
        raise ValueError("weight: labels that differ by draw take no sample weights")
    pos, neg, below, upto = ranks.compact
    R, G, D = len(w), ctx.slices.G, ctx.D
    exact = w.dtype.kind in "iu"
    acc = np.int64 if exact else np.float64

    def weights_of(ids: np.ndarray) -> np.ndarray:  # [R, D * m], rows of ids one after another
        return np.take(w, ids.ravel(), axis=1)

    twice = np.empty((R, G, G, D))  # below + upto, weighted
    for h in range(G):
        N = neg[h].shape[1]
        # running weight of group h's negatives, 0 first, per draw: row d at d * (N + 1)
        cum = np.zeros((R, D, N + 1), dtype=acc)
        np.cumsum(weights_of(neg[h]).reshape(R, D, N), axis=-1, dtype=acc, out=cum[:, :, 1:])
        cum = cum.reshape(R, D * (N + 1))
        offset = (np.arange(D) * (N + 1))[:, None]
        for j in range(G):
            lo, hi = below[j][h], upto[j][h]
            owed = np.take(cum, (lo + offset).ravel(), axis=1)
            if hi is lo:  # no ties
                owed *= 2
            else:
                owed += np.take(cum, (hi + offset).ravel(), axis=1)
            u_pos = weights_of(pos[j])
            dot = (u_pos * owed) if exact else u_pos.astype(acc, copy=False) * owed
            twice[:, j, h] = dot.reshape(R, D, -1).sum(axis=-1)
    return twice / 2.0


# ----------------------------------------------------------------------------- the engine


def _nanmean_classes(v: np.ndarray) -> np.ndarray:
    """Mean over the last (class) axis of the classes where the value is defined."""
    if v.shape[-1] == 1:
        return v[..., 0]
    ok = ~np.isnan(v)
    return np.where(ok, v, 0.0).sum(axis=-1) / ok.sum(axis=-1)


def _one_vs_rest(v: np.ndarray) -> np.ndarray:
    """Per-class values [..., C] -> those of the one-vs-rest metric: class 1 alone for C = 2."""
    return v[..., 1:] if v.shape[-1] == 2 else v


def _check_needs(ctx: Context, metric: Metric) -> None:
    if "probs" in metric.needs and ctx.probs is None:
        raise ValueError(f"metrics: {metric.name!r} needs probabilities, got hard predictions")
    if "members" in metric.needs and ctx.members is None:
        raise ValueError(f"metrics: {metric.name!r} needs the ensemble members (members=...)")


def _group_values(ctx: Context, metric: Metric) -> np.ndarray:
    """[R, L, D] values of a group-scope metric."""
    if metric.classes == "binary" and ctx.C > 2:
        return np.full((ctx.slices.R, ctx.slices.G + 1, ctx.D), np.nan)
    v = ctx.value(metric.name)
    return _nanmean_classes(v) if v.ndim == 4 else v


def _between_values(ctx: Context, metric: Metric) -> np.ndarray:
    """[R, D] values of a between-groups metric."""
    G = ctx.slices.G
    per_group = {}
    for name in metric.uses:
        v = ctx.value(name)
        per_group[name] = (v if v.ndim == 4 else v[..., None])[:, :G]
    out = metric.compute(per_group)
    return _nanmean_classes(out) if out.ndim == 3 else out


def score(ctx: Context, metrics: Sequence[str], groups: Sequence[str]) -> dict:
    """Every requested metric on ``ctx``: ``{(label, metric): float [R, D]}`` with the labels
    of ``labels(metric, groups)``. ``gap`` is :math:`\\max_g m_g - \\min_g m_g`, ``worst`` the
    min over groups (direction "higher") or max ("lower"); NaN where a group's value is."""
    out: dict[tuple[str, str], np.ndarray] = {}
    G = ctx.slices.G
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in metrics:
            metric = get(name)
            _check_needs(ctx, metric)
            for u in metric.uses:
                _check_needs(ctx, METRICS[u])
            if metric.scope == "between":
                out[(DISPARITY, name)] = _between_values(ctx, metric)
                continue
            v = _group_values(ctx, metric)
            for j, group in enumerate(groups):
                out[(group, name)] = v[:, j]
            out[("overall", name)] = v[:, G]
            hi, lo = v[:, :G].max(axis=1), v[:, :G].min(axis=1)
            out[("gap", name)] = hi - lo
            if metric.direction != "neither":
                out[("worst", name)] = lo if metric.direction == "higher" else hi
    return out


class Scores(dict):
    """``group_metrics``' result: ``{(label, metric): float [D]}``, plus ``notes``, short
    reasons for values that are NaN (a group without test samples, a one-class group...)."""

    notes: list[str]


def notes(
    y: np.ndarray,
    slices: Slices,
    groups: Sequence[str],
    values: dict,
    where: str = "",
) -> list[str]:
    """Why values are NaN, one short line each, for the groups of ``slices`` (``y`` [n] in
    the slices' order): a group without test samples; a group with one class, naming the
    metrics it leaves undefined; metrics undefined in some draws only (``where`` is appended,
    e.g. " at k=3")."""
    out = []
    metrics = list(dict.fromkeys(m for _, m in values))
    for name, (a, b) in zip(groups, slices.ranges):
        if a == b:
            out.append(f"group {name!r}: no test samples")
            continue
        vals = {m: values[(name, m)] for m in metrics if (name, m) in values}
        nan_all = [m for m, v in vals.items() if np.isnan(v).all()]
        nan_some = [m for m, v in vals.items() if np.isnan(v).any() and m not in nan_all]
        y_g = y[..., a:b]
        if nan_all and len(np.unique(y_g)) == 1:
            out.append(f"group {name!r}: one class in the test split, "
                       f"{'/'.join(nan_all)} undefined")
        elif nan_all:
            out.append(f"group {name!r}: {'/'.join(nan_all)} undefined{where}")
        if nan_some:
            out.append(f"group {name!r}: {'/'.join(nan_some)} undefined in some draws{where}")
    for m in metrics:
        v = values.get(("overall", m))
        if v is not None and np.isnan(v).any():
            share = "" if np.isnan(v).all() else " in some draws"
            out.append(f"overall: {m} undefined{share}{where}")
    return out


def group_slices(
    y: np.ndarray, g: np.ndarray, groups: Sequence[str], test_mix: str, n_classes: int
) -> tuple[np.ndarray, Slices]:
    """Validate labels ``y`` int [n] (or [D, n]) and group codes ``g`` int [n] (indices into
    ``groups``); return the stable order of the samples that makes every group contiguous, and
    the slices over the samples in that order (groups may be empty)."""
    y = np.asarray(y)
    g = np.asarray(g)
    n = y.shape[-1]
    if g.shape != (n,):
        raise ValueError(f"g: expected shape ({n},) to match y, got {g.shape}")
    _check_labels(y, n_classes)
    G = len(groups)
    if G < 2:
        raise ValueError(f"groups: expected at least 2 groups, got {list(groups)}")
    reserved = (*DERIVED_LABELS, DISPARITY)
    if set(groups) & set(reserved) or len(set(groups)) != G:
        raise ValueError(
            f"groups: expected distinct names other than {reserved}, got {list(groups)}"
        )
    if test_mix not in TEST_MIXES:
        raise ValueError(f"test_mix: expected 'balanced' or 'natural', got {test_mix!r}")
    if not np.issubdtype(g.dtype, np.integer) and n:
        raise ValueError(f"g: expected integer group codes, got {g.dtype}")
    if n and (g.min() < 0 or g.max() >= G):
        raise ValueError(f"g: expected group codes in 0..{G - 1}, got {g.min()}..{g.max()}")
    order = np.argsort(g, kind="stable")
    return order, Slices.for_groups(np.bincount(g, minlength=G), test_mix)


def group_metrics(
    probs: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    groups: list[str],
    metrics: list[str],
    test_mix: Literal["balanced", "natural"] = "balanced",
    *,
    members: Members | None = None,
    pred: np.ndarray | None = None,
) -> Scores:
    r"""Metrics per group, overall, gap and worst group, and disparities between groups, each
    float [D] (one value per draw): ``{(label, metric): values}``, labels from ``labels``.

    ``probs`` float [D, n, C]; ``y`` int [n]; ``g`` int [n] holds group codes, indices into
    ``groups``. ``(group, metric)``: the metric on that group's samples, unweighted;
    ``("overall", metric)``: on all samples, ``test_mix="balanced"`` weighting sample i by
    :math:`1 / (G \, n_{g_i})` so every group counts equally, ``"natural"`` unweighted;
    ``("gap", metric)``: :math:`\max_g m_g - \min_g m_g`; ``("worst", metric)``: the worst
    group by the metric's direction; ``("disparity", metric)`` for between-group metrics.
    A group without test samples gets NaN (and so do gap, worst and disparities), as does a
    metric a group leaves undefined (AUC of a one-class group); ``.notes`` says why.
    ``members``: the members behind the draws (``Members``), for diversity metrics;
    ``pred`` int [D, n]: hard predictions replacing the argmax of ``probs``.
    """
    probs, y, _ = _check(probs, y, None, per_draw_labels=False)
    D, n, C = probs.shape
    for name in metrics:
        get(name)
    order, slices = group_slices(y, g, groups, test_mix, C)
    if pred is not None:
        pred = np.asarray(pred)
        if pred.shape != (D, n) or (pred.size and (pred.min() < 0 or pred.max() >= C)):
            raise ValueError(f"pred: expected class codes 0..{C - 1} of shape {(D, n)}")
    if not np.array_equal(order, np.arange(n)):
        probs, y = np.take(probs, order, axis=1), y[order]
        pred = None if pred is None else pred[:, order]
        members = None if members is None else members.take(order)
    ctx = Context(y, slices, probs=probs, pred=pred, members=members)
    values = score(ctx, metrics, groups)
    out = Scores({key: v[0] for key, v in values.items()})
    out.notes = notes(y, slices, groups, out)
    return out


# ----------------------------------------------------------------------------- standalone


def _check_labels(y: np.ndarray, C: int) -> None:
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: expected integer class codes, got {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"y: expected class codes in 0..{C - 1}, got {y.min()}..{y.max()}")


def _check(
    probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None, per_draw_labels: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[2] < 2:
        raise ValueError(
            f"probs: expected an array [draws, n, classes >= 2], got shape {probs.shape}"
        )
    D, n, C = probs.shape
    y = np.asarray(y)
    shapes = [(n,), (D, n)] if per_draw_labels else [(n,)]
    if y.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise ValueError(f"y: expected shape {want} to match probs, got {y.shape}")
    _check_labels(y, C)
    y = y.astype(np.int64, copy=False)
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != (n,):
            raise ValueError(f"weight: expected shape ({n},) to match y, got {weight.shape}")
        if y.ndim == 2:
            raise ValueError("weight: labels that differ by draw take no sample weights")
    return probs, y, weight


def _standalone(metric: Metric) -> Callable[..., np.ndarray]:
    if metric.scope == "between":

        def between(probs: np.ndarray, y: np.ndarray, g: np.ndarray,
                    weight: np.ndarray | None = None) -> np.ndarray:
            probs, y, weight = _check(probs, y, weight)
            g = np.asarray(g)
            G = max(2, int(g.max()) + 1 if g.size else 2)
            order, slices = group_slices(y, g, [str(j) for j in range(G)], "natural",
                                         probs.shape[2])
            probs, y = np.take(probs, order, axis=1), y[..., order]
            if weight is not None:
                slices = replace(slices, weights=weight[order][None])
            with np.errstate(divide="ignore", invalid="ignore"):
                return _between_values(Context(y, slices, probs=probs), metric)[0]

        fn = between
    else:

        def group(probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, *,
                  members: Members | None = None) -> np.ndarray:
            probs, y, weight = _check(probs, y, weight)
            ctx = Context(y, Slices.whole(probs.shape[1], weight), probs=probs, members=members)
            _check_needs(ctx, metric)
            with np.errstate(divide="ignore", invalid="ignore"):
                return _group_values(ctx, metric)[0, 0]

        fn = group
    fn.__name__ = fn.__qualname__ = metric.name
    fn.__doc__ = metric.compute.__doc__
    fn.__module__ = __name__
    return fn


# ----------------------------------------------------------------------------- the metrics
# Notation: w_i the sample weights of the slice, \hat y_i the prediction, 1[.] an indicator;
# one-vs-rest (OvR) rates are for class 1 when C = 2 and averaged over classes when C > 2.


@register(direction="higher", needs={"labels"}, summary="share of correct predictions")
def accuracy(ctx: Context) -> np.ndarray:
    r"""Accuracy of each draw: :math:`\sum_i w_i [\hat y_i = y_i] / \sum_i w_i`,
    with :math:`\hat y_i = \arg\max_c p_{ic}`."""
    return ctx.confusion[1].sum(axis=-1) / ctx.totals


@register(direction="higher", needs={"labels"},
          summary="mean over classes of the recall of each class")
def balanced_accuracy(ctx: Context) -> np.ndarray:
    r"""Balanced accuracy of each draw: the mean, over classes :math:`c` present in ``y``, of the
    weighted recall :math:`\sum_{i: y_i = c} w_i [\hat y_i = c] / \sum_{i: y_i = c} w_i`
    (``sklearn.metrics.balanced_accuracy_score`` with ``sample_weight``)."""
    return ctx.confusion[1] / ctx.class_totals


@register(direction="higher", needs={"probs"},
          summary="ROC AUC, ties counted one half (one-vs-rest macro for C > 2)")
def auc(ctx: Context) -> np.ndarray:
    r"""ROC AUC of each draw, ties counted one half (weighted Mann-Whitney).

    Binary (C = 2): with scores :math:`s_i = p_{i1}`, positives P (y = 1), negatives N,
    :math:`\mathrm{AUC} = \sum_{i \in P} \sum_{j \in N} w_i w_j
    ([s_j < s_i] + \tfrac12 [s_j = s_i]) / (\sum_P w_i \sum_N w_j)`.
    C > 2: one-vs-rest macro average, over the classes c present in ``y``, of the binary AUC
    of :math:`p_{\cdot c}` for class c against the rest (``sklearn.metrics.roc_auc_score`` with
    ``multi_class="ovr", average="macro"``). NaN when fewer than two classes are present.
    """
    sl = ctx.slices
    classes = [1] if ctx.C == 2 else range(ctx.C)
    out = np.empty((sl.R, sl.G + 1, ctx.D, len(classes)))
    for i, c in enumerate(classes):
        M = ctx.pair_counts(c)
        P = ctx.class_totals[..., c]
        N = ctx.totals - P
        diag = np.diagonal(M, axis1=1, axis2=2).transpose(0, 2, 1)  # [R, G, D]
        whole = np.einsum("j,h,rjhd->rd", sl.overall, sl.overall, M)[:, None]
        out[..., i] = np.concatenate([diag, whole], axis=1) / (P * N)
    return out


@register(direction="higher", needs={"labels"},
          summary="true positive rate P(pred=1 | y=1) (OvR macro for C > 2)")
def tpr(ctx: Context) -> np.ndarray:
    r"""True positive rate (recall): :math:`\sum_i w_i [\hat y_i = 1][y_i = 1] /
    \sum_i w_i [y_i = 1]`; C > 2: the mean, over classes c where it is defined, of the same
    with c as the positive class. NaN when no sample has the positive label (fairlearn's
    ``true_positive_rate`` returns 0 there)."""
    predicted, hits = ctx.confusion
    return _one_vs_rest(hits / ctx.class_totals)


@register(direction="lower", needs={"labels"},
          summary="false positive rate P(pred=1 | y=0) (OvR macro for C > 2)")
def fpr(ctx: Context) -> np.ndarray:
    r"""False positive rate: :math:`\sum_i w_i [\hat y_i = 1][y_i \ne 1] /
    \sum_i w_i [y_i \ne 1]`; C > 2: the mean over classes c where defined of the same with c
    as the positive class. NaN when every sample has the positive label."""
    predicted, hits = ctx.confusion
    return _one_vs_rest((predicted - hits) / (ctx.totals[..., None] - ctx.class_totals))


@register(direction="neither", needs={"labels"},
          summary="selection rate P(pred=1) (OvR macro for C > 2)")
def selection_rate(ctx: Context) -> np.ndarray:
    r"""Selection rate: :math:`\sum_i w_i [\hat y_i = 1] / \sum_i w_i`; C > 2: the mean over
    classes of :math:`P(\hat y = c)`, which is always 1/C (its per-class values drive
    ``spd``)."""
    predicted, _ = ctx.confusion
    return _one_vs_rest(predicted / ctx.totals[..., None])


@register(direction="higher", needs={"labels"},
          summary="precision P(y=1 | pred=1) (OvR macro for C > 2)")
def precision(ctx: Context) -> np.ndarray:
    r"""Precision: :math:`\sum_i w_i [\hat y_i = 1][y_i = 1] / \sum_i w_i [\hat y_i = 1]`;
    C > 2: the mean over classes c where defined of the same with c as the positive class.
    NaN when nothing is predicted positive (scikit-learn's ``zero_division`` would give 0)."""
    predicted, hits = ctx.confusion
    return _one_vs_rest(hits / predicted)


def _range(v: np.ndarray) -> np.ndarray:
    """max - min over the group axis of [R, G, D, K]; NaN if any group's value is NaN."""
    return v.max(axis=1) - v.min(axis=1)


@register(scope="between", direction="lower", needs={"labels"}, uses=("selection_rate",),
          summary="statistical parity difference: range of selection rates over groups")
def spd(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Statistical (demographic) parity difference: :math:`\max_g SR_g - \min_g SR_g`, with
    :math:`SR_g` the selection rate of group g (fairlearn's ``demographic_parity_difference``).
    C > 2: the same per class c from each group's :math:`P(\hat y = c)`, averaged over
    classes. NaN if a group's rate is undefined (a group without samples)."""
    return _range(per_group["selection_rate"])


@register(scope="between", direction="lower", needs={"labels"}, uses=("tpr",),
          summary="equal opportunity difference: range of true positive rates over groups")
def eod(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Equal opportunity difference: :math:`\max_g TPR_g - \min_g TPR_g` (fairlearn's
    ``equal_opportunity_difference``). C > 2: per class from the groups' one-vs-rest TPRs,
    averaged over the classes where every group's TPR is defined. NaN if a group's TPR is
    undefined (no positives in it)."""
    return _range(per_group["tpr"])


@register(scope="between", direction="lower", needs={"labels"}, uses=("tpr", "fpr"),
          summary="average odds difference: mean of the TPR and FPR ranges over groups")
def aod(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Average odds difference: :math:`(\mathrm{range}_g TPR_g + \mathrm{range}_g FPR_g) / 2`
    (fairlearn's ``equalized_odds_difference(agg="mean")``). C > 2: per class, then averaged
    over classes."""
    return (_range(per_group["tpr"]) + _range(per_group["fpr"])) / 2.0


@register(scope="between", direction="lower", needs={"labels"}, uses=("tpr", "fpr"),
          summary="equalised odds difference: the larger of the TPR and FPR ranges")
def eq_odds(per_group: dict[str, np.ndarray]) -> np.ndarray:
    r"""Equalised odds difference: :math:`\max(\mathrm{range}_g TPR_g,
    \mathrm{range}_g FPR_g)` (fairlearn's ``equalized_odds_difference()``). C > 2: per class,
    then averaged over classes. NaN if either range is."""
    t, f = _range(per_group["tpr"]), _range(per_group["fpr"])
    return np.where(np.isnan(t) | np.isnan(f), np.nan, np.maximum(t, f))


@register(direction="lower", needs={"probs"},
          summary="expected calibration error, 15 equal-width bins of top-class confidence")
def ece(ctx: Context) -> np.ndarray:
    r"""Expected calibration error with 15 equal-width bins of the top-class confidence
    :math:`\mathrm{conf}_i = \max_c p_{ic}`: :math:`\sum_b |\sum_{i \in b} w_i
    ([\hat y_i = y_i] - \mathrm{conf}_i)| / \sum_i w_i`. Bin b holds
    :math:`b/15 < \mathrm{conf} \le (b+1)/15` (bin 0 includes 0), as
    ``sklearn.calibration.calibration_curve(strategy="uniform", n_bins=15)`` bins ``conf``
    (``np.searchsorted(np.linspace(0, 1, 16)[1:-1], conf)``, see ``ece_bin``)."""
    conf = ctx.conf
    bins = ctx._memo(ctx._draw, "ece_bins", lambda: ece_bin(conf))
    gap = ctx._memo(ctx._draw, "ece_gap", lambda: ctx.correct - conf)
    per_bin = ctx.slices.binned(bins, gap, ECE_BINS)
    return np.abs(per_bin).sum(axis=-1) / ctx.totals


@register(direction="lower", needs={"probs"},
          summary="Brier score: mean squared error of the probabilities")
def brier(ctx: Context) -> np.ndarray:
    r"""Brier score: binary :math:`\sum_i w_i (p_{i1} - y_i)^2 / \sum_i w_i`
    (``sklearn.metrics.brier_score_loss(y, p[:, 1])``); C > 2 :math:`\sum_i w_i \sum_c
    (p_{ic} - [y_i = c])^2 / \sum_i w_i` (``brier_score_loss(y, p)`` with its default
    ``scale_by_half="auto"``, which halves only binary inputs; ``scale_by_half=True`` would
    halve this one too)."""
    return ctx.slices.sums(ctx.sample_brier) / ctx.totals


@register(direction="lower", needs={"probs"},
          summary="negative log-likelihood (log loss) of the true class")
def nll(ctx: Context) -> np.ndarray:
    r"""Negative log-likelihood: :math:`-\sum_i w_i \log \mathrm{clip}(p_{i y_i}) /
    \sum_i w_i`, probabilities clipped to :math:`[\epsilon, 1 - \epsilon]` with
    :math:`\epsilon` the float64 machine epsilon, as ``sklearn.metrics.log_loss`` does with
    float64 input."""

    def build() -> np.ndarray:
        p, y = ctx.probs, ctx.y
        if ctx.C == 2:
            p_true = np.where(y == 1, p[:, :, 1], p[:, :, 0])
        else:
            p_true = np.take_along_axis(p, np.broadcast_to(y, p.shape[:2])[..., None], 2)[..., 0]
        return -np.log(np.clip(p_true, _LOG_EPS, 1 - _LOG_EPS))

    return ctx.slices.sums(ctx._memo(ctx._draw, "nll", build)) / ctx.totals


@register(direction="neither", needs={"labels", "members"},
          summary="member disagreement: share of member pairs predicting different labels")
def disagreement(ctx: Context) -> np.ndarray:
    r"""Disagreement of the draw's k members: the mean over the k(k-1)/2 member pairs (p, q)
    of :math:`\sum_i w_i [\hat y^p_i \ne \hat y^q_i] / \sum_i w_i`. With :math:`n_{ic}` the
    members voting c for sample i, a sample's share of disagreeing pairs is
    :math:`(k^2 - \sum_c n_{ic}^2) / (k (k - 1))`; 0 for k = 1."""

    def build() -> np.ndarray:
        k = ctx.members.subsets.shape[1]
        if k == 1:
            return np.zeros((ctx.D, ctx.n))
        votes = ctx.votes.astype(np.int32)
        if ctx.C == 2:  # k^2 - n_1^2 - (k - n_1)^2 = 2 n_1 (k - n_1)
            n1 = votes[..., 0]
            return n1 * (k - n1) * (2.0 / (k * (k - 1)))
        return (k * k - (votes * votes).sum(axis=-1)) / (k * (k - 1.0))

    per_sample = ctx._memo(ctx._draw, "disagreement", build)
    return ctx.slices.sums(per_sample) / ctx.totals


@register(direction="neither", needs={"probs", "members"},
          summary="ambiguity: mean member Brier minus the ensemble's Brier")
def ambiguity(ctx: Context) -> np.ndarray:
    r"""Ambiguity (exact ambiguity decomposition of the Brier score): the mean over the draw's
    k members of the member's Brier score on the slice minus the ensemble's,
    :math:`\frac1k \sum_m B(p^m) - B(\bar p)`, which equals the slice mean of the per-sample
    variance of the member probabilities (:math:`\frac1k \sum_m (p^m_{i1} - \bar p_{i1})^2`
    binary, summed over classes for C > 2); 0 for k = 1. A slice's member Brier is linear in
    the samples, so it is summed once per member and averaged over each draw's subset."""
    member_sums = ctx.slices.sums(ctx.members.brier)  # [R, L, E]
    member_mean = member_sums[:, :, ctx.members.subsets].mean(axis=-1) / ctx.totals
    return member_mean - ctx.value("brier")
