"""Group-specific threshold post-processing (Hardt et al. 2016) for many score vectors at once.

``fit_thresholds`` reproduces fairlearn's ``ThresholdOptimizer(prefit=True,
objective="accuracy_score", flip=False)`` for every row of a score matrix [D, n] in one call,
``predict_proba`` equals fairlearn's ``_pmf_predict(...)[:, 1]`` and ``predict`` draws from it.
The algorithm, per row (fairlearn's, step by step):

1. Trade-off points per group j. Sort the group's scores descending; one point per threshold
   between distinct scores, ``t = (s_k + s_next) / 2`` (``+inf`` before the first score,
   ``-inf`` after the last), the rule being ``score > t``. With c0, c1 the negatives and
   positives scoring above t, n_j, P_j, N_j the group's size, positives and negatives:

   * equalized odds: x = FPR = c0 / N_j, y = TPR = c1 / P_j;
   * demographic parity: x = selection rate = (c0 + c1) / n_j,
     y = accuracy = (c1 + N_j - c0) / n_j.

   Tied scores move together: a threshold never separates equal scores.
2. Upper convex hull of those points (Andrew's monotone chain in floating point, so points that
   are collinear in exact arithmetic stay or go exactly as fairlearn's rounding decides).
3. The hull interpolated on the grid x_i = i / grid_size: with hull points a < x_i <= b,
   p0 = (x_b - x_i) / (x_b - x_a), p1 = 1 - p0, y_j(x_i) = p0 y_a + p1 y_b; rule: apply
   ``score > t_a`` with probability p0 and ``score > t_b`` with probability p1.
4. The grid point i*:

   * demographic parity: i* = argmax_i sum_j (n_j / n) y_j(x_i) (all groups share x_i);
   * equalized odds: y_min(x_i) = min_j y_j(x_i), i* = argmax_i of the accuracy
     (P y_min + N (1 - x_i)) / n, rounded to 15 decimals; group j then predicts the constant
     x* = x_{i*} with probability p_ignore = (y_j - y_min) / (y_j - x*) (0 when y_j = x*), which
     lowers its TPR to y_min while keeping its FPR at x*.

   argmax takes the first maximum.
5. P(predict 1 | score s, group j) = p_ignore c + (1 - p_ignore) (p0 [s > t0] + p1 [s > t1]),
   with c = x* for equalized odds and p_ignore = c = 0 for demographic parity.

Groups that cannot be fitted: a group with no fit samples, or whose fit samples hold a single
class (fairlearn raises "Degenerate labels"), is left out of the fit, which is then fairlearn's
fit on the remaining samples; ``ThresholdRule.defined`` is False for it and ``predict_proba``
returns NaN for its samples (fairlearn would predict 0 for an unseen group).

Vectorisation (no Python loop over rows): one sort per group; an exact quickhull on the
integer counts (c0, c1) of all rows at once finds the hull's vertices and the points lying
exactly on its edges; fairlearn's floating-point chain is then replayed only inside edges that
hold such points, all edges stepped in lockstep; the grid interpolation is done by counting.
fairlearn's float test agrees with the exact one wherever the exact cross product is nonzero
(it is at least 1 / (N_j P_j), far above rounding, for groups under ~10^7 samples), so only
the exactly collinear points need the replay. The thresholds' operator is always ``>``
(fairlearn's ``flip=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fairensemble.common import arrays
from fairensemble.common.errors import InputError

CONSTRAINTS = {"threshold_eo": "equalized_odds", "threshold_dp": "demographic_parity"}
_ACCURACY_DECIMALS = 15  # fairlearn rounds the equalized-odds objective before its argmax


@dataclass(frozen=True)
class ThresholdRule:
    """Per draw d and group j: the randomised rule fairlearn's InterpolatedThresholder applies.

    P(1 | s) = p_ignore c + (1 - p_ignore) (p0 [s > threshold0] + p1 [s > threshold1]), with
    c = ``prediction_constant``. Arrays are float [D, G] (NaN where undefined) except ``x_best``
    float [D], the common constraint value (FPR for equalized odds, selection rate for
    demographic parity), and ``defined`` bool [D, G]: False for a group that had no fit samples
    or a single class in them.
    """

    constraint: str
    grid_size: int
    threshold0: np.ndarray
    threshold1: np.ndarray
    p0: np.ndarray
    p1: np.ndarray
    p_ignore: np.ndarray
    prediction_constant: np.ndarray
    x_best: np.ndarray
    defined: np.ndarray

    @property
    def n_draws(self) -> int:
        return self.defined.shape[0]

    @property
    def n_groups(self) -> int:
        return self.defined.shape[1]


def fit_thresholds(
    scores: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    n_groups: int,
    constraint: str,
    grid_size: int = 1000,
) -> ThresholdRule:
    """Fit group-specific randomised thresholds on every row of ``scores`` (see module doc).

    scores float [D, n] (D score vectors on the same samples, e.g. ensemble probabilities of
    class 1), y int [n] in {0, 1}, g int [n] group codes 0..G-1 with G = ``n_groups``;
    constraint one of 'equalized_odds', 'demographic_parity'. Row d of the result equals
    fairlearn's ThresholdOptimizer fitted on ``scores[d]`` alone.
    """
    scores, y, g = _check_fit_args(scores, y, g, n_groups, constraint, grid_size)
    D = scores.shape[0]
    fittable = _fittable_groups(y, g, n_groups)
    groups = np.flatnonzero(fittable)
    shape = (D, n_groups)
    params = {k: np.full(shape, np.nan) for k in ("t0", "t1", "p0", "p1", "p_ignore", "c")}
    x_best = np.full(D, np.nan)
    if groups.size and D:
        keep = fittable[g]
        scores, y, g = scores[:, keep], y[keep], g[keep]
        grid = np.linspace(0, 1, grid_size + 1)
        fit = _fit_groups(scores, y, g, groups, constraint, grid)
        for name, value in fit.items():
            if name == "x_best":
                x_best = value
            else:
                params[name][:, groups] = value
    return ThresholdRule(
        constraint=constraint,
        grid_size=grid_size,
        threshold0=params["t0"],
        threshold1=params["t1"],
        p0=params["p0"],
        p1=params["p1"],
        p_ignore=params["p_ignore"],
        prediction_constant=params["c"],
        x_best=x_best,
        defined=np.broadcast_to(fittable, shape).copy(),
    )


def predict_proba(rule: ThresholdRule, scores: np.ndarray, g: np.ndarray) -> np.ndarray:
    """P(predict 1) per draw and sample, float [D, m] = fairlearn's ``_pmf_predict[:, 1]``.

    q = p_ignore c + (1 - p_ignore) (p0 [s > t0] + p1 [s > t1]) with the parameters of the
    sample's group in that draw; NaN where ``rule.defined`` is False for the sample's group.
    """
    scores, g = _check_apply_args(rule, scores, g)

    def at(a: np.ndarray) -> np.ndarray:  # [D, G] -> [D, m], each sample's group
        return np.take(a, g, axis=1)

    above0 = scores > at(rule.threshold0)
    above1 = scores > at(rule.threshold1)
    interpolated = at(rule.p0) * above0 + at(rule.p1) * above1
    p_ignore = at(rule.p_ignore)
    out = p_ignore * at(rule.prediction_constant) + (1 - p_ignore) * interpolated
    out[~at(rule.defined)] = np.nan
    return out


def predict(
    rule: ThresholdRule, scores: np.ndarray, g: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Randomised 0/1 predictions, int8 [D, m]: 1 where u < q for one uniform u ~ U[0, 1) per
    element (``rng.random((D, m))``) and q = ``predict_proba``; -1 where q is undefined (NaN).
    """
    q = predict_proba(rule, scores, g)
    u = rng.random(q.shape)
    out = (u < q).astype(np.int8)
    out[np.isnan(q)] = -1
    return out


# ---------------------------------------------------------------- validation


def _check_fit_args(
    scores: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    n_groups: int,
    constraint: str,
    grid_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if constraint not in CONSTRAINTS.values():
        raise InputError(
            f"constraint: expected one of {sorted(CONSTRAINTS.values())}, got {constraint!r}"
        )
    arrays.count(grid_size, "grid_size")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise InputError(f"scores: expected a 2-D array [draws, n], got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise InputError("scores: expected finite values, got NaN or inf")
    n = scores.shape[1]
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputError(f"y: expected shape ({n},) to match scores, got {y.shape}")
    if n and not np.isin(y, (0, 1)).all():
        raise InputError(f"y: expected labels in {{0, 1}}, got values {np.unique(y)[:5]}")
    g = _check_groups(g, n, n_groups, "to match scores")
    return scores, y.astype(np.int64), g


def _check_apply_args(
    rule: ThresholdRule, scores: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != rule.n_draws:
        raise InputError(
            f"scores: expected shape ({rule.n_draws}, m) to match the rule's draws, "
            f"got {scores.shape}"
        )
    return scores, _check_groups(g, scores.shape[1], rule.n_groups, "to match scores")


def _check_groups(g: np.ndarray, n: int, n_groups: int, why: str) -> np.ndarray:
    n_groups = arrays.count(n_groups, "n_groups")
    return arrays.codes(g, "g", n, n_groups, "group codes", why).astype(np.intp)


def _fittable_groups(y: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    """bool [G]: the group has fit samples of both classes."""
    positives = np.bincount(g, weights=y, minlength=n_groups)
    sizes = np.bincount(g, minlength=n_groups)
    return (positives > 0) & (positives < sizes)


# ---------------------------------------------------------------- fitting


def _fit_groups(
    scores: np.ndarray,
    y: np.ndarray,
    g: np.ndarray,
    groups: np.ndarray,
    constraint: str,
    grid: np.ndarray,
) -> dict[str, np.ndarray]:
    """Steps 1-4 of the module doc for the fittable ``groups``; arrays [D, len(groups)]."""
    D = scores.shape[0]
    members = [np.flatnonzero(g == j) for j in groups]
    points = [_tradeoff_points(scores[:, m], y[m], constraint) for m in members]
    # rows of the batch: (group, draw) pairs, group-major
    c0, c1, x, yv, thr, valid = (
        _stack_padded([p[k] for p in points], fill) for k, fill in enumerate(_POINT_FILL)
    )
    (c0, c1, x, yv, thr), count = _compact(valid, c0, c1, x, yv, thr)
    hull = _upper_hull(c0, c1, x, yv, thr, count)
    idx, p0, p1, y_grid = _interpolate_on_grid(hull["x"], hull["y"], hull["valid"], grid)
    G = len(groups)
    y_grid = y_grid.reshape(G, D, -1)
    if constraint == "equalized_odds":
        positives = int(y.sum())
        negatives = len(y) - positives
        best = _best_equalized_odds(y_grid, grid, positives, negatives)
    else:
        sizes = np.array([len(m) for m in members])
        best = _best_demographic_parity(y_grid, sizes)

    def at_best(a: np.ndarray) -> np.ndarray:  # [G * D, grid] -> [D, G] at each draw's i*
        return a.reshape(G, D, -1)[:, np.arange(D), best].T

    a = at_best(idx).T.reshape(-1)  # hull point a (x_a < x* <= x_{a+1}) per batch row
    rows = np.arange(G * D)
    out = {
        "t0": hull["thr"][rows, a].reshape(G, D).T,
        "t1": hull["thr"][rows, a + 1].reshape(G, D).T,
        "p0": at_best(p0),
        "p1": at_best(p1),
        "x_best": grid[best],
    }
    if constraint == "equalized_odds":
        y_group = at_best(y_grid)
        y_min = y_group.min(axis=1, keepdims=True)
        x_b = grid[best][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            p_ignore = (y_group - y_min) / (y_group - x_b)
        out["p_ignore"] = np.where(y_group == x_b, 0.0, p_ignore)
        out["c"] = np.broadcast_to(x_b, (D, G)).copy()
    else:
        out["p_ignore"] = np.zeros((D, G))
        out["c"] = np.zeros((D, G))
    return out


# padding of (c0, c1, x, y, threshold, valid) when groups of different sizes share a batch
_POINT_FILL = (0, 0, np.nan, np.nan, np.nan, False)


def _tradeoff_points(
    scores: np.ndarray, y: np.ndarray, constraint: str
) -> tuple[np.ndarray, ...]:
    """Step 1 for one group: its trade-off points in order of decreasing threshold.

    scores float [D, m], y int [m]. Returns (c0, c1, x, y, threshold, valid), each
    [D, m + 1]: position 0 is the threshold +inf, position k >= 1 the threshold just below the
    k-th sorted score, valid only where that score ends a run of ties; c0, c1 count the
    negatives and positives above the threshold.
    """
    D, m = scores.shape
    order = np.argsort(-scores, axis=1, kind="stable")
    s = np.take_along_axis(scores, order, axis=1)
    c1 = np.cumsum(y[order], axis=1)
    c0 = np.arange(1, m + 1) - c1
    nxt = np.concatenate([s[:, 1:], np.full((D, 1), -np.inf)], axis=1)
    ends_tie = np.concatenate([s[:, :-1] != s[:, 1:], np.ones((D, 1), bool)], axis=1)

    def with_start(a: np.ndarray, first: float | int | bool) -> np.ndarray:
        return np.concatenate([np.full((D, 1), first, dtype=a.dtype), a], axis=1)

    c0, c1 = with_start(c0, 0), with_start(c1, 0)
    thr = with_start((s + nxt) / 2, np.inf)
    valid = with_start(ends_tie, True)
    positives = int(y.sum())
    negatives = m - positives
    if constraint == "equalized_odds":
        x, yv = c0 / negatives, c1 / positives
    else:
        x, yv = (c0 + c1) / m, (c1 + (negatives - c0)) / m
    return c0, c1, x, yv, thr, valid


def _stack_padded(arrays: list[np.ndarray], fill: float | int | bool) -> np.ndarray:
    """Concatenate [D, m_j] arrays along rows into [sum D, max m_j], right-padded with fill."""
    width = max(a.shape[1] for a in arrays)
    dtype = np.result_type(*arrays)
    out = np.full((sum(a.shape[0] for a in arrays), width), fill, dtype=dtype)
    row = 0
    for a in arrays:
        out[row : row + a.shape[0], : a.shape[1]] = a
        row += a.shape[0]
    return out


def _upper_hull(
    c0: np.ndarray,
    c1: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    thr: np.ndarray,
    count: np.ndarray,
) -> dict[str, np.ndarray]:
    """Step 2: fairlearn's upper convex hull of each row's points, compacted to the left.

    Row b holds its points in its first count[b] columns. The exact hull is found on the
    counts (c0, c1): x and y are c0 and c1 (or c0 + c1 and c1 - c0) up to positive scales,
    a map that keeps the upper hull. Returns x, y, thr float [B, H] and valid bool [B, H]
    (a prefix of each row).
    """
    on_hull, vertex = _hull_candidates(c0, c1, count)
    (xc, yc, tc, vc), count = _compact(on_hull, x, y, thr, vertex)
    left = _prefix(count, xc.shape[1])
    (xc, yc, tc, vc), count = _compact(left & ~_inside_axis_run(xc, yc, left), xc, yc, tc, vc)
    keep = vc | _kept_on_edges(xc, yc, vc, count)
    (xh, yh, th), count = _compact(keep, xc, yc, tc)
    return {"x": xh, "y": yh, "thr": th, "valid": _prefix(count, xh.shape[1])}


def _prefix(count: np.ndarray, width: int) -> np.ndarray:
    """bool [B, width]: True in the first count[b] columns of row b."""
    return np.arange(width) < count[:, None]


def _kept_on_edges(
    x: np.ndarray, y: np.ndarray, vertex: np.ndarray, count: np.ndarray
) -> np.ndarray:
    """The points between hull vertices (exactly on an edge) that fairlearn's chain keeps.

    Row b's first count[b] points are the hull's vertices (``vertex``) and edge points, in
    order. The chain never pops a vertex, and a test whose middle point is a vertex keeps it,
    so each edge, from its first vertex to its last, is a chain of its own: the edges with
    points inside are stepped as rows of one batch. Returns bool [B, K].
    """
    B, K = x.shape
    inside = ~vertex & _prefix(count, K)
    keep = np.zeros((B, K), bool)
    if not inside.any():
        return keep
    rows, start = np.nonzero(vertex[:, :-1] & inside[:, 1:])  # vertices that open such an edge
    _, nxt = _neighbours(vertex)
    length = nxt[rows, start] - start + 1
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    edge = np.repeat(np.arange(rows.size), length)
    src_row, src_col = rows[edge], start[edge] + offset
    width = int(length.max())
    ex, ey = (np.full((rows.size, width), np.nan) for _ in range(2))
    ex[edge, offset], ey[edge, offset] = x[src_row, src_col], y[src_row, src_col]
    kept = _monotone_chain(ex, ey, length)[edge, offset]
    keep[src_row, src_col] = kept
    return keep & inside


def _compact(keep: np.ndarray, *arrays: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Each row's kept entries moved to its left end, in order, and the count kept per row.

    The width is the largest count; float arrays are padded with NaN, others with 0.
    """
    B = keep.shape[0]
    count = keep.sum(axis=1)
    width = int(count.max()) if B else 0
    if width == keep.shape[1] and (keep == _prefix(count, width)).all():
        return list(arrays), count  # already compact
    dest = (np.arange(B)[:, None] * width + np.cumsum(keep, axis=1) - 1)[keep]
    out = []
    for a in arrays:
        c = np.full(B * width, np.nan if np.issubdtype(a.dtype, np.floating) else 0, a.dtype)
        c[dest] = a[keep]
        out.append(c.reshape(B, width))
    return out, count


def _neighbours(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the previous and next True position in each row; -1 / K where there is none."""
    B, K = mask.shape
    pos = np.arange(K)
    last = _running_max(np.where(mask, pos, -1))
    prev = np.concatenate([np.full((B, 1), -1), last[:, :-1]], axis=1)
    first = _running_min_from_right(np.where(mask, pos, K))
    nxt = np.concatenate([first[:, 1:], np.full((B, 1), K)], axis=1)
    return prev, nxt


def _hull_candidates(
    c0: np.ndarray, c1: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points on the exact upper hull of each row, and which of them are vertices, bool [B, K].

    Row b's points are its first count[b] columns, with c0 and c1 non-decreasing. Quickhull
    on these integers, all rows at once: the first and last points are vertices; each round,
    a point between consecutive vertices a, b is dropped when its height above the chord,
    (c1 - c1_a)(c0_b - c0_a) - (c1_b - c1_a)(c0 - c0_a), is negative (it is then strictly
    below the hull), and where some heights are positive the greatest (the first if tied)
    becomes a vertex (the first of a tie is where an edge starts, so a vertex too). When no
    height is positive, the points left are the vertices and the points on hull edges.
    Dropping points strictly below the hull does not change what fairlearn's floating-point
    chain keeps.
    """
    B, K = c0.shape
    pos = np.broadcast_to(np.arange(K), (B, K))
    c0, c1 = c0.astype(np.int64), c1.astype(np.int64)
    alive = _prefix(count, K)
    vertex = np.zeros((B, K), bool)
    rows = np.arange(B)
    vertex[:, 0] = True
    vertex[rows, count - 1] = True
    # head start: the points touched by lines of slopes 2^-3..2^3 in (FPR, TPR) space are
    # vertices (the first of a tie included), found with one argmax each
    negatives, positives = c0[rows, count - 1][:, None], c1[rows, count - 1][:, None]
    for e in range(-3, 4):
        reach = c1 * negatives * 2 ** max(-e, 0) - c0 * positives * 2 ** max(e, 0)
        vertex[rows, np.argmax(np.where(alive, reach, -_BIG), axis=1)] = True
    while True:
        # c0, c1 never decrease along a row: running max / min read the enclosing vertices
        a0, a1 = (_running_max(np.where(vertex, c, -1)) for c in (c0, c1))
        b0, b1 = (_running_min_from_right(np.where(vertex, c, _BIG)) for c in (c0, c1))
        between = alive & ~vertex
        height = (c1 - a1) * (b0 - a0) - (b1 - a1) * (c0 - a0)
        alive &= ~(between & (height < 0))
        above = between & (height > 0)
        if not above.any():
            break
        vertex |= _highest_per_segment(np.where(above, height, -1), vertex)
        if alive.sum(axis=1).max() < 0.7 * alive.shape[1]:
            (c0, c1, pos, vertex), _ = _compact(alive, c0, c1, pos, vertex)
            alive = _prefix(alive.sum(axis=1), c0.shape[1])
    on_hull, is_vertex = np.zeros((B, K), bool), np.zeros((B, K), bool)
    on_hull[np.nonzero(alive)[0], pos[alive]] = True
    is_vertex[np.nonzero(vertex)[0], pos[vertex]] = True
    return on_hull, is_vertex


_BIG = np.iinfo(np.int64).max


def _running_max(a: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(a, axis=1)


def _running_min_from_right(a: np.ndarray) -> np.ndarray:
    return np.minimum.accumulate(a[:, ::-1], axis=1)[:, ::-1]


def _highest_per_segment(height: np.ndarray, vertex: np.ndarray) -> np.ndarray:
    """bool [B, K]: in each run from a vertex to the next, the first point of greatest positive
    height (none where every height is <= 0)."""
    flat = height.ravel()
    starts = np.flatnonzero(vertex.ravel())  # each segment runs to the next vertex
    best = np.maximum.reduceat(flat, starts)
    segment = np.cumsum(vertex.ravel()) - 1
    is_best = (flat > 0) & (flat == best[segment])
    where = np.where(is_best, np.arange(flat.size), flat.size)
    first = np.minimum.reduceat(where, starts)
    out = np.zeros(flat.size, bool)
    out[first[first < flat.size]] = True
    return out.reshape(height.shape)


def _inside_axis_run(x: np.ndarray, y: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Alive points between alive neighbours with the same x, or the same y, as themselves.

    fairlearn's float test pops such a point whatever surrounds it (both sides of the test
    are exactly 0), so it can be dropped before the chain is run.
    """
    prev, nxt = _neighbours(alive)
    inner = alive & (prev >= 0) & (nxt < x.shape[1])
    rows = np.arange(x.shape[0])[:, None]
    p, q = np.where(inner, prev, 0), np.where(inner, nxt, 0)
    same_x = (x[rows, p] == x) & (x == x[rows, q])
    same_y = (y[rows, p] == y) & (y == y[rows, q])
    return inner & (same_x | same_y)


def _monotone_chain(x: np.ndarray, y: np.ndarray, count: np.ndarray) -> np.ndarray:
    """fairlearn's upper hull (Andrew's monotone chain) of each row, in floating point.

    Row b holds its points, sorted by x, in its first count[b] columns. A new point r2 pops
    the stack top r1 (r0 below it) while (y1 - y0)(x2 - x0) <= (y2 - y0)(x1 - x0). All rows
    step through their points together (longest rows first, so the rows still stepping are a
    leading slice). Returns bool [B, K]: the points left on the stack.
    """
    order = np.argsort(-count, kind="stable")
    B, K = x.shape
    px, py = np.full((K + 1, B), np.nan), np.full((K + 1, B), np.nan)  # point K: NaN
    px[:K], py[:K] = x[order].T, y[order].T  # point k of every row contiguous
    stack = np.full((B, K + 1), K, np.intp)  # row b's stack in stack[b, 1..top[b]]
    top = np.zeros(B, np.intp)
    # the stack's two top points, NaN where the stack is shorter (a test with NaN never pops)
    x0, y0, x1, y1 = np.full((4, B), np.nan)
    rows = np.arange(B)
    stepping = B - np.searchsorted(count[order][::-1], np.arange(K), side="right")
    for k in range(K):
        n = stepping[k]
        xk, yk = px[k, :n], py[k, :n]
        pop = (y1[:n] - y0[:n]) * (xk - x0[:n]) <= (yk - y0[:n]) * (x1[:n] - x0[:n])
        live = np.flatnonzero(pop) if pop.any() else ()
        while len(live):  # separate 1-D arrays: fancy indexing on them is cheap
            t = top[live] - 1
            top[live] = t
            x1[live], y1[live] = x0[live], y0[live]
            below = stack[live, t - 1]
            a0, b0 = px[below, live], py[below, live]
            x0[live], y0[live] = a0, b0
            b1 = y1[live]
            live = live[(b1 - b0) * (xk[live] - a0) <= (yk[live] - b0) * (x1[live] - a0)]
        t = top[:n]
        t += 1
        stack[rows[:n], t] = k
        x0[:n], y0[:n] = x1[:n], y1[:n]
        x1[:n], y1[:n] = xk, yk
    keep = np.zeros((B, K), bool)
    on_stack = (np.arange(K + 1) >= 1) & (np.arange(K + 1) <= top[:, None])
    keep[order[np.nonzero(on_stack)[0]], stack[on_stack]] = True
    return keep


def _interpolate_on_grid(
    x: np.ndarray, y: np.ndarray, valid: np.ndarray, grid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step 3: each row's hull at every grid point, as fairlearn's ``_interpolate_curve``.

    idx[b, i] is the hull point a with x_a < grid_i <= x_{a+1} (at grid_0 = 0: the last hull
    point with x = 0); p0 = (x_{a+1} - grid_i) / (x_{a+1} - x_a), p1 = 1 - p0,
    y = p0 y_a + p1 y_{a+1}. All int/float [B, grid].
    """
    B = x.shape[0]
    M = grid.size
    # number of hull points with x <= grid_i, by counting where each hull point enters the grid
    enters = np.searchsorted(grid, np.where(valid, x, np.inf), side="left")
    flat = (np.arange(B)[:, None] * (M + 1) + enters)[valid]
    counts = np.bincount(flat, minlength=B * (M + 1)).reshape(B, M + 1)[:, :M]
    idx = np.cumsum(counts, axis=1) - 1
    rows = np.arange(B)[:, None]
    at_point = grid[1:] == x[rows, idx[:, 1:]]
    idx[:, 1:] -= at_point
    x_lo, x_hi = x[rows, idx], x[rows, idx + 1]
    p0 = (x_hi - grid) / (x_hi - x_lo)
    p1 = 1 - p0
    y_grid = p0 * y[rows, idx] + p1 * y[rows, idx + 1]
    return idx, p0, p1, y_grid


def _best_equalized_odds(
    y_grid: np.ndarray, grid: np.ndarray, positives: int, negatives: int
) -> np.ndarray:
    """Step 4, equalized odds: i* per draw, int [D], from the groups' TPR curves [G, D, grid].

    accuracy(x_i) = (P y_min + N (1 - x_i)) / n with y_min = min_j y_j(x_i), rounded to 15
    decimals; the confusion counts are summed in fairlearn's order so ties break alike.
    """
    y_min = y_grid.min(axis=0)
    tp, fn = positives * y_min, positives * (1.0 - y_min)
    fp, tn = negatives * grid, negatives * (1.0 - grid)
    accuracy = (tp + tn) / (tp + tn + fp + fn)
    return np.argmax(np.around(accuracy, _ACCURACY_DECIMALS), axis=1)


def _best_demographic_parity(y_grid: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Step 4, demographic parity: i* = argmax_i sum_j (n_j / n) accuracy_j(x_i), int [D]."""
    n = int(sizes.sum())
    total = (int(sizes[0]) / n) * y_grid[0]
    for j in range(1, len(sizes)):  # summed group by group, in fairlearn's order
        total = total + (int(sizes[j]) / n) * y_grid[j]
    return np.argmax(total, axis=1)
