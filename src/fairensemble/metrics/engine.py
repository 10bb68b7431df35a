"""The metric engine: slices of samples (groups, overall, sample weights), the shared
intermediates of one block of draws (``Context``), and every registered metric scored per
group, overall, gap, worst group and between groups (``score``, ``group_metrics``), with the
standalone functions built from a metric's declaration.

Conventions, shared by all metrics: predictions are the argmax over classes, ties going to the
lowest class (``numpy.argmax``); binary means C = 2 with class 1 positive; for C > 2 the
one-vs-rest metrics are the macro average over the classes where they are defined (fairlearn's
and scikit-learn's "macro"); an undefined value (0/0) is NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from fairensemble.common import arrays
from fairensemble.common.errors import InputError
from fairensemble.metrics.ranks import Ranks, Ties, pair_counts
from fairensemble.metrics.registry import DERIVED_LABELS, DISPARITY, METRICS, Metric, get

# how ``overall`` weighs the groups: equally, or as the test split holds them
TEST_MIXES = ("balanced", "natural")
# equal-width bins of top-class confidence in the expected calibration error
ECE_BINS = 15
# sklearn.calibration.calibration_curve(strategy="uniform") bin edges
_ECE_EDGES = np.linspace(0.0, 1.0, ECE_BINS + 1)


# ----------------------------------------------------------------------------- slices


@dataclass(frozen=True, eq=False)
class Slices:
    """Where metrics are evaluated: G groups, each a contiguous range of samples, then
    ``overall``, the groups combined with weights, then M margins; slice l = 0..G-1 is group
    l, l = G overall, l = G + 1 + m margin m.

    ``bounds`` int [G + 1]: group j holds samples ``bounds[j]:bounds[j + 1]`` (may be empty).
    ``overall`` float [G]: the weight of a group-j sample in the overall slice.
    ``weights`` [R, n]: R replicates of sample weights, integer counts (a bootstrap: exact
    integer arithmetic) or floats, or None for one replicate of unit weights. A slice's
    weighted sum of x is :math:`\\sum_i u_{ri} x_i` over the group, and
    :math:`\\sum_j o_j \\sum_{i \\in j} u_{ri} x_i` overall.
    ``margins``: per margin, the groups it unites (an attribute's value over the intersectional
    groups holding it): its sums are its groups' sums, every sample weighing 1, so a margin is
    scored like a group of its own.
    """

    bounds: np.ndarray
    overall: np.ndarray
    weights: np.ndarray | None = None
    margins: tuple[tuple[int, ...], ...] = ()

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
    def L(self) -> int:
        """Slices in all: the groups, overall and the margins."""
        return self.G + 1 + len(self.margins)

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
        """[R, G, ...] per-group sums -> [R, L, ...] with the overall slice and the margins
        appended."""
        o = self.overall.reshape(1, -1, *([1] * (per_group.ndim - 2)))
        parts = [per_group, (per_group * o).sum(axis=1, keepdims=True)]
        parts += [per_group[:, list(m)].sum(axis=1, keepdims=True) for m in self.margins]
        return np.concatenate(parts, axis=1)

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
            raise InputError("probs: expected probabilities, or pred with n_classes")
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

    def sorted_codes(self, c: int) -> tuple[np.ndarray, np.ndarray, Ties | None]:
        """Samples sorted by the score of class c, per draw: (order int [D, n], code int8
        [D, n] = 2 * group + [y == c] in that order, ties in the sorted scores or None)."""

        def build() -> tuple[np.ndarray, np.ndarray, Ties | None]:
            scores = np.ascontiguousarray(self.probs[:, :, c])  # argsort of a view is slower
            order = np.argsort(scores, axis=1)
            s = _take_rows(scores, order)
            code = (2 * self.slices.group_codes).astype(np.int8 if self.slices.G < 64
                                                        else np.int64)
            code = code + self.is_class(c)
            return order, _take_rows(code, order), Ties.find(s)

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
        return self._memo(self._slice, ("pairs", c), lambda: pair_counts(
            self.negatives_below(c), self.slices.weights, self.y.ndim != 1))

    def negatives_below(self, c: int) -> Ranks:
        """Where class c's positives stand among each group's negatives (see ``Ranks``)."""
        return self._memo(self._draw, ("ranks", c),
                          lambda: Ranks(*self.sorted_codes(c), self.slices.G))


# ----------------------------------------------------------------------------- the engine


def _nanmean_classes(v: np.ndarray) -> np.ndarray:
    """Mean over the last (class) axis of the classes where the value is defined."""
    if v.shape[-1] == 1:
        return v[..., 0]
    ok = ~np.isnan(v)
    return np.where(ok, v, 0.0).sum(axis=-1) / ok.sum(axis=-1)


def one_vs_rest(v: np.ndarray) -> np.ndarray:
    """Per-class values [..., C] -> those of the one-vs-rest metric: class 1 alone for C = 2."""
    return v[..., 1:] if v.shape[-1] == 2 else v


def _check_needs(ctx: Context, metric: Metric) -> None:
    if "probs" in metric.needs and ctx.probs is None:
        raise InputError(f"metrics: {metric.name!r} needs probabilities, got hard predictions")
    if "members" in metric.needs and ctx.members is None:
        raise InputError(f"metrics: {metric.name!r} needs the ensemble members (members=...)")


def _group_values(ctx: Context, metric: Metric) -> np.ndarray:
    """[R, L, D] values of a group-scope metric."""
    if metric.classes == "binary" and ctx.C > 2:
        return np.full((ctx.slices.R, ctx.slices.L, ctx.D), np.nan)
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


def score(ctx: Context, metrics: Sequence[str], groups: Sequence[str],
          margins: Sequence[str] = ()) -> dict:
    """Every requested metric on ``ctx``: ``{(label, metric): float [R, D]}`` with the labels
    of ``labels(metric, groups)``, and for per-group metrics one per margin of the slices
    (named by ``margins``). ``gap`` is :math:`\\max_g m_g - \\min_g m_g`, ``worst`` the min
    over groups (direction "higher") or max ("lower"); NaN where a group's value is. Margins
    never enter gap, worst or disparities: those stay between the groups."""
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
            for m, label in enumerate(margins):
                out[(label, name)] = v[:, G + 1 + m]
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
        raise InputError(f"g: expected shape ({n},) to match y, got {g.shape}")
    _check_labels(y, n_classes)
    G = len(groups)
    if G < 2:
        raise InputError(f"groups: expected at least 2 groups, got {list(groups)}")
    reserved = (*DERIVED_LABELS, DISPARITY)
    if set(groups) & set(reserved) or len(set(groups)) != G:
        raise InputError(
            f"groups: expected distinct names other than {reserved}, got {list(groups)}"
        )
    if test_mix not in TEST_MIXES:
        raise InputError(f"test_mix: expected 'balanced' or 'natural', got {test_mix!r}")
    if not np.issubdtype(g.dtype, np.integer) and n:
        raise InputError(f"g: expected integer group codes, got {g.dtype}")
    if n and (g.min() < 0 or g.max() >= G):
        raise InputError(f"g: expected group codes in 0..{G - 1}, got {g.min()}..{g.max()}")
    order = np.argsort(g, kind="stable")
    return order, Slices.for_groups(np.bincount(g, minlength=G), test_mix)


# per-attribute margins of intersectional groups: (label, the combinations it holds)
Margins = Sequence[tuple[str, Sequence[int]]]


def with_margins(slices: Slices, groups: Sequence[str], margins: Margins
                 ) -> tuple[Slices, list[str]]:
    """``slices`` with ``margins`` appended, each ``(label, indices of the groups it unites)``,
    and the margins' labels (distinct, and none a group's or a derived label)."""
    labels = [label for label, _ in margins]
    taken = {*groups, *DERIVED_LABELS, DISPARITY}
    if len(set(labels)) != len(labels) or taken & set(labels):
        raise InputError(f"margins: expected distinct labels that name no group, got {labels}")
    G = len(groups)
    for label, members in margins:
        if not len(members) or min(members) < 0 or max(members) >= G:
            raise InputError(f"margins: {label!r} expected group indices in 0..{G - 1}, "
                             f"got {list(members)}")
    return replace(slices, margins=tuple(tuple(int(j) for j in m) for _, m in margins)), labels


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
    margins: Margins = (),
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
    ``pred`` int [D, n]: hard predictions replacing the argmax of ``probs``; ``margins``:
    unions of groups scored beside them by per-group metrics (``with_margins``).
    """
    probs, y, _ = _check(probs, y, None, per_draw_labels=False)
    D, n, C = probs.shape
    for name in metrics:
        get(name)
    order, slices = group_slices(y, g, groups, test_mix, C)
    slices, margin_labels = with_margins(slices, groups, margins)
    if pred is not None:
        pred = np.asarray(pred)
        if pred.shape != (D, n) or (pred.size and (pred.min() < 0 or pred.max() >= C)):
            raise InputError(f"pred: expected class codes 0..{C - 1} of shape {(D, n)}")
    if not np.array_equal(order, np.arange(n)):
        probs, y = np.take(probs, order, axis=1), y[order]
        pred = None if pred is None else pred[:, order]
        members = None if members is None else members.take(order)
    ctx = Context(y, slices, probs=probs, pred=pred, members=members)
    values = score(ctx, metrics, groups, margin_labels)
    out = Scores({key: v[0] for key, v in values.items()})
    out.notes = notes(y, slices, groups, out)
    return out


# ----------------------------------------------------------------------------- standalone


def _check_labels(y: np.ndarray, C: int) -> None:
    arrays.codes(y.reshape(-1), "y", None, C)


def _check(
    probs: np.ndarray, y: np.ndarray, weight: np.ndarray | None, per_draw_labels: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[2] < 2:
        raise InputError(
            f"probs: expected an array [draws, n, classes >= 2], got shape {probs.shape}"
        )
    D, n, C = probs.shape
    y = np.asarray(y)
    shapes = [(n,), (D, n)] if per_draw_labels else [(n,)]
    if y.shape not in shapes:
        want = " or ".join(str(s) for s in shapes)
        raise InputError(f"y: expected shape {want} to match probs, got {y.shape}")
    _check_labels(y, C)
    y = y.astype(np.int64, copy=False)
    if weight is not None:
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != (n,):
            raise InputError(f"weight: expected shape ({n},) to match y, got {weight.shape}")
        if y.ndim == 2:
            raise InputError("weight: labels that differ by draw take no sample weights")
    return probs, y, weight


def standalone(metric: Metric) -> Callable[..., np.ndarray]:
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
    # where the registered name is bound, so the function pickles by reference
    fn.__module__ = metric.compute.__module__
    return fn
