"""Stacked MLP training: all members of all given cells as one tensor program.

Every parameter carries a leading member axis M and lives in one flat contiguous buffer
(param-major blocks, so each parameter is a contiguous ``[M, ...]`` view). A training step is
a hand-written forward/backward with ``baddbmm``/``bmm`` (no autograd graph), run over cache-
sized chunks of members, then one call of torch's fused Adam/AdamW/SGD kernel on the flat
buffers. The update is element-wise, so one update over the stack is M independent optimisers
(and equals ``torch.optim`` per member to float rounding).

A member's numbers depend on its cell's seeds only (``member_streams``: its own seed for the
sources in ``train.diversity``, the cell's first seed for the rest): its initialisation comes
from ``init_mlp_params(seed, ...)`` (a ``torch.Generator`` seeded with the seed), its
mini-batch order, early-stopping hold-out and bootstrap resample from the streams in
``fairensemble.train`` (numpy streams spawned from the seed, separate from the init stream).
With both a hold-out and ``bootstrap``, the hold-out is drawn first and the bootstrap
resamples the rows left, so no hold-out row is trained on. ``augment`` has no effect here
(table inputs are not flipped).
Batching follows ``DataLoader(shuffle=True, drop_last=False)``: a fresh permutation every
epoch, batches of ``batch_size``, the last partial batch kept, cross-entropy averaged over
the batch. With soft targets (``CellData.soft_train``: the raters' label distribution) the
cross-entropy is against them: the one-hot of ``(softmax - onehot) / b`` becomes the row's
target distribution.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import torch

from fairensemble.common import arrays
from fairensemble.common.errors import ConfigError, InputError
from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.models.mlp import ACTIVATIONS, init_mlp_params, layer_sizes
from fairensemble.train.common import choose_device, early_stopping_score, lr_schedule
from fairensemble.train.flat import Layout, Optimiser, act_, act_backward_, stack_logits
from fairensemble.train.mitigation import (
    BalancedBatches,
    Cells,
    check,
    dro_adjustment,
    dro_step,
    reweight,
)
from fairensemble.train.streams import (
    CellData,
    Progress,
    TrainStats,
    checked_soft,
    member_rows,
    member_streams,
    order_rng,
)

# CPU: floats per activation buffer of one member chunk, per torch thread (~0.8 MB: 24 members
# of a 64-wide layer at batch 128), so that a chunk's activations stay in each core's L2 cache
# between its kernels (measured on a Zen 4 with 1 MB L2 per core: 24 per thread beat 40 in
# total by ~18 % at 1 thread and ~10 % at 2 threads)
CHUNK_FLOATS = 24 * 128 * 64
EVAL_CHUNK_FLOATS = 1 << 20  # activations per forward chunk at prediction time (4 MiB)
EVAL_ROWS = 512  # rows per prediction block, fixed so that results do not depend on M


# ----------------------------------------------------------------------------- one stack


class _Weighting:
    """What the cell's mitigation does to each step of the stack's members: per-row weights
    (``reweight``), or per-member Group DRO cell weights ``q`` [M, K] updated every step
    (``group_dro``; cells beyond a member's own K stay at weight 0). ``none`` and
    ``balanced`` (which changes the batches, not the loss) leave the gradient as it is."""

    def __init__(self, train: TrainConfig, cells: list[Cells] | None, m_of_cell: list[int],
                 device: torch.device) -> None:
        self.kind, self.eta = train.mitigation, train.dro_step
        self.w_all = self.code_all = self.q = self.adjust = None
        if self.kind == "reweight":
            self.w_all = torch.from_numpy(np.concatenate([reweight(c) for c in cells])).to(
                device)
        elif self.kind == "group_dro":
            self.code_all = torch.from_numpy(np.concatenate([c.code for c in cells])).to(device)
            K = max(c.K for c in cells)
            q = np.zeros((sum(m_of_cell), K), dtype=np.float32)
            adjust = np.zeros_like(q)
            start = 0
            for c, m in zip(cells, m_of_cell):
                q[start:start + m, :c.K] = 1.0 / c.K
                adjust[start:start + m, :c.K] = dro_adjustment(c, train.dro_adjust)
                start += m
            self.q, self.adjust = torch.from_numpy(q).to(device), torch.from_numpy(adjust).to(
                device)

    def keep(self, rows: torch.Tensor) -> None:
        if self.q is not None:
            self.q, self.adjust = self.q[rows], self.adjust[rows]

    def sample_weights(self, plan: _Plan, log_p: torch.Tensor, r: torch.Tensor
                       ) -> torch.Tensor | None:
        """[m, 1, b] weights of the chunk's samples in its mean loss (None: all 1)."""
        m, b = plan.m, plan.b
        if self.w_all is not None:
            return self.w_all.index_select(0, r).view(m, 1, b)
        if self.q is None:
            return None
        if plan.soft_t is not None:  # cross-entropy against the soft targets
            ce = (log_p * plan.soft_t).sum(dim=1).neg()
        else:
            ce = log_p.gather(1, plan.y_col).view(m, b).neg()
        cell = self.code_all.index_select(0, r).view(m, b)
        c0, c1 = plan.c0, plan.c1
        return dro_step(ce, cell, self.q[c0:c1], self.adjust[c0:c1], self.eta).view(m, 1, b)


class _Scratch:
    """Activation buffers for a chunk of m members at batch size b. Chunks run one after
    another and share them, so the activations stay in cache from one chunk to the next."""

    def __init__(self, layout: Layout, activation: str, d: int, m: int, b: int,
                 device: torch.device, soft: bool = False) -> None:
        outs = [fo for _, fo in layout.sizes]
        self.x = torch.empty(m * b, d, device=device)
        self.y = torch.empty(m * b, dtype=torch.int64, device=device)
        self.soft = torch.empty(m * b, outs[-1], device=device) if soft else None
        self.neg_w = torch.full((m, 1, b), -1.0 / b, device=device)
        self.pre = [torch.empty(m, b, o, device=device) for o in outs[:-1]]
        gelu = activation == "gelu"
        self.post = [torch.empty_like(p) if gelu else p for p in self.pre]
        self.dpost = [torch.empty_like(p) for p in self.pre]
        self.logits_t = torch.empty(m, outs[-1], b, device=device)


class _Plan:
    """Parameter views and buffers for one chunk of members (c0..c1-1) at batch size b, built
    once so that a step is nothing but kernel calls."""

    def __init__(self, stack: _Stack, c0: int, c1: int, b: int, scratch: _Scratch) -> None:
        m = c1 - c0
        layout, self.act = stack.layout, stack.activation
        self.stack, self.c0, self.c1, self.m, self.b = stack, c0, c1, m, b
        self.rows = slice(c0 * b, c1 * b)
        self.x, self.y = scratch.x, scratch.y
        self.y_col = self.y.view(m, 1, b)
        self.soft = scratch.soft  # [m b, C] soft targets of the batch rows, or None
        self.soft_t = None if self.soft is None else self.soft.view(m, b, -1).transpose(1, 2)
        self.neg_w = scratch.neg_w
        self.inv_b = 1.0 / b
        ws = [w[c0:c1] for w in stack.blocks[0::2]]
        bs = [w[c0:c1] for w in stack.blocks[1::2]]
        gws = [w[c0:c1] for w in stack.grad_blocks[0::2]]
        gbs = [w[c0:c1] for w in stack.grad_blocks[1::2]]
        # hidden layers: (input, W [in, out], bias, pre, post, dpost, grad W, grad b, io)
        self.hidden = []
        inp = self.x.view(m, b, -1)
        for layer in range(len(ws) - 1):
            io = layout.io[layer]
            w_io = ws[layer] if io else ws[layer].transpose(1, 2)
            pre, post = scratch.pre[layer], scratch.post[layer]
            self.hidden.append((inp, w_io, bs[layer], pre, post, scratch.dpost[layer],
                                gws[layer], gbs[layer], io))
            inp = post
        self.w_last, self.b_last = ws[-1], bs[-1]  # [m, C, h], [m, C, 1]
        self.gw_last, self.gb_last = gws[-1], gbs[-1]
        self.a_last = inp
        self.logits_t = scratch.logits_t

    def gradients(self, X_all: torch.Tensor, y_all: torch.Tensor, rows: torch.Tensor) -> None:
        """Forward and backward of this chunk on the batch rows; gradients land in the stack's
        flat gradient buffer."""
        act = self.act
        r = rows[self.rows]
        torch.index_select(X_all, 0, r, out=self.x)
        torch.index_select(y_all, 0, r, out=self.y)
        if self.soft is not None:
            torch.index_select(self.stack.soft_all, 0, r, out=self.soft)
        for inp, w, bias, pre, post, _, _, _, _ in self.hidden:
            torch.baddbmm(bias, inp, w, out=pre)
            act_(act, pre, post)
        logits_t = self.logits_t  # [m, C, b] = W_last [m, C, h] @ a^T
        torch.baddbmm(self.b_last, self.w_last, self.a_last.transpose(1, 2), out=logits_t)

        # d(mean cross-entropy)/d(logits) = (softmax - onehot) / b, computed like autograd's
        # log_softmax backward: exp(log_softmax) * (1/b), then -1/b at the target (soft
        # targets: minus target / b); a mitigation weighs each sample's share of that mean
        # (``mitigation.py``)
        log_p = torch.log_softmax(logits_t, dim=1)
        weights = self.stack.weighting.sample_weights(self, log_p, r)
        g = torch.exp(log_p, out=logits_t).mul_(self.inv_b)
        if self.soft_t is not None:
            g.sub_(self.soft_t, alpha=self.inv_b)
        else:
            g.scatter_add_(1, self.y_col, self.neg_w)
        if weights is not None:
            g.mul_(weights)
        torch.bmm(g, self.a_last, out=self.gw_last)
        torch.sum(g, dim=2, keepdim=True, out=self.gb_last)
        g_rows, w_t = g.transpose(1, 2), self.w_last  # [m, b, C], [m, C, h]
        for inp, w, _, pre, post, dpost, gw, gb, io in reversed(self.hidden):
            torch.bmm(g_rows, w_t, out=dpost)
            act_backward_(act, dpost, pre, post)
            if io:
                torch.bmm(inp.transpose(1, 2), dpost, out=gw)
            else:
                torch.bmm(dpost.transpose(1, 2), inp, out=gw)
            torch.sum(dpost, dim=1, keepdim=True, out=gb)
            g_rows, w_t = dpost, w.transpose(1, 2)


class _Stack:
    """M members of one architecture trained on rows of ``X_all``.

    A step runs forward/backward in chunks of at most ``chunk`` members (equal sizes) that share
    one set of activation buffers, so the activations stay in cache (on 2 cores a step of 220
    members ran 8.1 ms with one buffer set per chunk, 6.9 ms shared), then one optimiser update
    over the whole flat buffer. No member's numbers depend on the chunking.
    """

    def __init__(self, layout: Layout, activation: str, train: TrainConfig,
                 flat: torch.Tensor, m: int, X_all: torch.Tensor, y_all: torch.Tensor,
                 chunk: int, weighting: _Weighting, soft_all: torch.Tensor | None = None
                 ) -> None:
        self.layout, self.activation, self.weighting = layout, activation, weighting
        self.X_all, self.y_all, self.soft_all = X_all, y_all, soft_all
        self.opt = Optimiser(train, flat)
        self.chunk = chunk
        self._use(flat, m)

    def _use(self, flat: torch.Tensor, m: int) -> None:
        self.m, self.param = m, flat
        self.grad = torch.zeros_like(flat)
        self.blocks = self.layout.blocks(flat, m)
        self.grad_blocks = self.layout.blocks(self.grad, m)
        self._plans: dict[int, list[_Plan]] = {}

    def keep(self, rows: torch.Tensor) -> None:
        """Continue with the members ``rows`` only (their optimiser state travels with them)."""
        self.opt.select(self.layout, self.m, rows)
        self.weighting.keep(rows)
        self._use(self.layout.select(self.param, self.m, rows), len(rows))

    def step(self, rows: torch.Tensor, lr: float) -> None:
        """One optimiser step; ``rows`` [M, b] are row indices of each member's batch."""
        b = rows.shape[1]
        if b not in self._plans:
            scratch: dict[int, _Scratch] = {}
            plans = []
            n_chunks = -(-self.m // self.chunk)
            bounds = [self.m * i // n_chunks for i in range(n_chunks + 1)]
            for c0, c1 in itertools.pairwise(bounds):
                m = c1 - c0
                if m not in scratch:
                    scratch[m] = _Scratch(self.layout, self.activation, self.X_all.shape[1],
                                          m, b, self.param.device, self.soft_all is not None)
                plans.append(_Plan(self, c0, c1, b, scratch[m]))
            self._plans[b] = plans
        flat_rows = rows.reshape(-1)
        for plan in self._plans[b]:
            plan.gradients(self.X_all, self.y_all, flat_rows)
        self.opt.step(self.param, self.grad, lr)


# ----------------------------------------------------------------------------- public entry


def _labels(y: object, n: int, n_classes: int, where: str) -> np.ndarray:
    return arrays.codes(y, where, n, n_classes)


def _check(cells: list[CellData], model: ModelConfig, n_classes: int) -> None:
    if model.dropout != 0:
        raise ConfigError(
            f"model.dropout: the stacked MLP trainer supports 0 only, got {model.dropout}"
        )
    if model.activation not in ACTIVATIONS:
        raise ConfigError(f"model.activation: expected one of {list(ACTIVATIONS)}")
    if n_classes < 2:
        raise InputError(f"n_classes: expected at least 2, got {n_classes}")
    if not cells:
        raise InputError("cells: expected at least one cell")
    for i, cell in enumerate(cells):
        if not cell.member_seeds:
            raise InputError(f"cells[{i}].member_seeds: expected at least one seed")
        if any(int(s) < 0 for s in cell.member_seeds):
            raise InputError(f"cells[{i}].member_seeds: expected non-negative integers")


def train_stacked(
    cells: list[CellData],
    model: ModelConfig,
    train: TrainConfig,
    n_classes: int,
    progress: Progress | None = None,
    stats: list[TrainStats] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Train every member of every cell and return, per cell, ``{eval name: probs}`` with
    softmax probabilities float32 [E_cell, n_eval, n_classes]. ``stats``, when given, gets a
    ``TrainStats`` per cell (epochs run, rows seen, FLOPs, the mitigation's cell weights).

    Cells with the same number of training rows (and of shared validation rows) train as one
    stack; a member's result does not depend on which other members share its stack. Under a
    ``train.mitigation`` each cell's ``g_train`` gives its rows' groups.
    """
    _check(cells, model, n_classes)
    device = choose_device(train.device)
    d = arrays.features(cells[0].X_train, "cells[0].X_train").shape[1]
    X_train = [arrays.features(c.X_train, f"cells[{i}].X_train", d) for i, c in enumerate(cells)]
    y_train = [
        _labels(c.y_train, len(X), n_classes, f"cells[{i}].y_train")
        for i, (c, X) in enumerate(zip(cells, X_train))
    ]
    vals: list[tuple[np.ndarray, np.ndarray] | None] = []
    for i, c in enumerate(cells):
        if c.val is None or train.early_stopping is None:
            vals.append(None)
            continue
        Xv = arrays.features(c.val[0], f"cells[{i}].val", d)
        if len(Xv) == 0:
            raise InputError(f"cells[{i}].val: expected at least one validation row")
        vals.append((Xv, _labels(c.val[1], len(Xv), n_classes, f"cells[{i}].val")))

    softs = _soft_targets(cells, y_train, n_classes)
    cells_of = _mitigation_cells(cells, y_train, train.mitigation, n_classes)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, X in enumerate(X_train):
        val = vals[i]
        groups[(len(X), -1 if val is None else len(val[1]))].append(i)

    sizes = layer_sizes(d, list(model.hidden), n_classes)
    layout = Layout(sizes)
    lrs = lr_schedule(train)
    results: list[dict[str, np.ndarray]] = [{} for _ in cells]
    cell_stats: list[TrainStats | None] = [None] * len(cells)
    per_sample = flops_per_step(d, list(model.hidden), n_classes, 1)
    with torch.inference_mode():
        for idx in groups.values():
            flat, m_of_cell, fitted = _fit_stack(
                layout, model.activation, train, lrs, [X_train[i] for i in idx],
                [y_train[i] for i in idx], [vals[i] for i in idx],
                [list(cells[i].member_seeds) for i in idx], device, progress,
                None if cells_of is None else [cells_of[i] for i in idx],
                None if softs is None else [softs[i] for i in idx],
            )
            for i, st in zip(idx, fitted):
                st.flops_per_sample = float(per_sample)
                cell_stats[i] = st
            start = 0
            m_total = sum(m_of_cell)
            for i, m in zip(idx, m_of_cell):
                rows = torch.arange(start, start + m, device=device)
                member_flat = layout.select(flat, m_total, rows)
                start += m
                for name, X_eval in cells[i].evals.items():
                    Xe = arrays.features(X_eval, f"cells[{i}].evals[{name!r}]", d)
                    results[i][name] = _predict(layout, model.activation, member_flat, m, Xe,
                                                device)
    if stats is not None:
        stats.extend(cell_stats)
    return results


def _soft_targets(cells: list[CellData], y_train: list[np.ndarray], n_classes: int
                  ) -> list[np.ndarray] | None:
    """Each cell's soft targets, checked (None when no cell has any; a cell without them among
    cells with them trains on its labels' one-hot rows)."""
    if all(c.soft_train is None for c in cells):
        return None
    return [np.eye(n_classes, dtype=np.float32)[y] if c.soft_train is None else
            checked_soft(c.soft_train, len(y), n_classes, f"cells[{i}].soft_train")
            for i, (c, y) in enumerate(zip(cells, y_train))]


def _mitigation_cells(cells: list[CellData], y_train: list[np.ndarray], mitigation: str,
                      n_classes: int) -> list[Cells] | None:
    """Each cell's group x class cells, checked for the mitigation (None without one)."""
    if mitigation == "none":
        return None
    out = []
    for i, (c, y) in enumerate(zip(cells, y_train)):
        if c.g_train is None:
            raise InputError(f"cells[{i}].g_train: train.mitigation {mitigation!r} needs the "
                             "training rows' group codes")
        g = arrays.codes(c.g_train, f"cells[{i}].g_train", len(y), np.iinfo(np.int64).max,
                         "group codes")
        out.append(Cells.of(y, g, n_classes))
        check(mitigation, out[-1], f"cells[{i}]")
    return out


def _predict(layout: Layout, activation: str, flat: torch.Tensor, m: int, X: np.ndarray,
             device: torch.device) -> np.ndarray:
    """Softmax probabilities [M, n, C] of M members on shared inputs, in bounded chunks.

    Rows go in blocks of a fixed EVAL_ROWS whatever M is (gemm rounding can depend on where a
    row sits in its block), members in groups sized to EVAL_CHUNK_FLOATS."""
    n = len(X)
    width = max(max(fo for _, fo in layout.sizes), X.shape[1])
    group = max(1, EVAL_CHUNK_FLOATS // (EVAL_ROWS * width))
    X_t = torch.from_numpy(X).to(device)
    out = np.empty((m, n, layout.sizes[-1][1]), dtype=np.float32)
    for c0 in range(0, m, group):
        c1 = min(c0 + group, m)
        part = flat if (c0, c1) == (0, m) else layout.select(
            flat, m, torch.arange(c0, c1, device=flat.device))
        for s in range(0, n, EVAL_ROWS):
            xb = X_t[s : s + EVAL_ROWS].unsqueeze(0).expand(c1 - c0, -1, -1)
            logits = stack_logits(layout, activation, part, c1 - c0, xb)
            out[c0:c1, s : s + EVAL_ROWS] = torch.softmax(logits, dim=-1).cpu().numpy()
    return out


def _val_scores(layout: Layout, activation: str, flat: torch.Tensor, m: int, metric: str,
                X_val: torch.Tensor, y_val: torch.Tensor, rows: torch.Tensor) -> np.ndarray:
    """Validation score of each of the M members of ``flat`` on its rows [M, n_val] of X_val,
    in chunks of members so that memory stays bounded."""
    n_val = rows.shape[1]
    width = max(max(fo for _, fo in layout.sizes), X_val.shape[1])
    step = max(1, EVAL_CHUNK_FLOATS // (n_val * width))
    rows = rows.to(X_val.device)
    scores = []
    for c0 in range(0, m, step):
        c1 = min(c0 + step, m)
        r = rows[c0:c1].reshape(-1)
        part = layout.select(flat, m, torch.arange(c0, c1, device=flat.device))
        logits = stack_logits(layout, activation, part, c1 - c0,
                         X_val.index_select(0, r).view(c1 - c0, n_val, -1))
        scores.append(early_stopping_score(metric, logits,
                                           y_val.index_select(0, r).view(c1 - c0, n_val)))
    return np.concatenate(scores)


def _fit_stack(
    layout: Layout,
    activation: str,
    train: TrainConfig,
    lrs: list[float],
    X_train: list[np.ndarray],
    y_train: list[np.ndarray],
    vals: list[tuple[np.ndarray, np.ndarray] | None],
    seeds: list[list[int]],
    device: torch.device,
    progress: Progress | None,
    cells: list[Cells] | None = None,
    softs: list[np.ndarray] | None = None,
) -> tuple[torch.Tensor, list[int], list[TrainStats]]:
    """Train the members of same-sized cells together; returns their final flat parameters
    (members in cell order), the member count of each cell and what each cell's members
    did. ``cells``: each cell's group x class cells (a mitigation's unit); ``softs``: each
    cell's soft targets (None: its labels)."""
    n = len(X_train[0])
    m_of_cell = [len(s) for s in seeds]
    streams = [st for cell_seeds in seeds for st in member_streams(cell_seeds, train.diversity)]
    cell_of = np.repeat(np.arange(len(seeds)), m_of_cell)
    m_total = len(streams)
    sizes = layout.sizes
    flat = layout.pack(
        [init_mlp_params(st.init, sizes[0][0], [fo for _, fo in sizes[:-1]], sizes[-1][1])
         for st in streams]
    ).to(device)
    X_all = torch.from_numpy(np.concatenate(X_train)).to(device)
    y_all = torch.from_numpy(np.concatenate(y_train)).to(device)
    soft_all = None if softs is None else torch.from_numpy(np.concatenate(softs)).to(device)
    offsets = cell_of * n

    early = train.early_stopping
    holdout = early is not None and vals[0] is None
    splits = [member_rows(st, n, early.val_fraction if holdout else None) for st in streams]
    train_rows = [tr for tr, _ in splits]
    val_rows = X_val_all = y_val_all = None
    if early is not None:
        if holdout:
            val_rows = np.stack([va for _, va in splits]) + offsets[:, None]
            X_val_all, y_val_all = X_all, y_all
        else:
            n_val = len(vals[0][1])
            X_val_all = torch.from_numpy(np.concatenate([v[0] for v in vals])).to(device)
            y_val_all = torch.from_numpy(np.concatenate([v[1] for v in vals])).to(device)
            val_rows = cell_of[:, None] * n_val + np.arange(n_val)
    n_tr = len(train_rows[0])

    rngs = [order_rng(st.order) for st in streams]
    chunk = m_total
    if device.type == "cpu":
        per_member = train.batch_size * max(fo for _, fo in sizes)
        chunk = max(1, CHUNK_FLOATS * torch.get_num_threads() // per_member)
    weighting = _Weighting(train, cells, m_of_cell, device)
    stack = _Stack(layout, activation, train, flat, m_total, X_all, y_all, chunk, weighting,
                   soft_all)
    balanced = train.mitigation == "balanced"
    codes = ([BalancedBatches(cells[cell_of[a]].code[train_rows[a]]) for a in range(m_total)]
             if balanced else [])
    epochs_run = np.zeros(m_total, dtype=np.int64)
    q_final = None if weighting.q is None else np.zeros(tuple(weighting.q.shape), np.float32)
    active = np.arange(m_total)  # original member index of each stack row
    best = flat.clone() if early is not None else None
    best_score = np.full(m_total, -np.inf)
    since_best = np.zeros(m_total, dtype=np.int64)
    epochs, bs = train.epochs, train.batch_size

    for epoch, lr in enumerate(lrs):
        if balanced:
            order = np.stack([train_rows[a][codes[a].epoch(bs, rngs[a])]
                              for a in active])
        else:
            order = np.stack([train_rows[a][rngs[a].permutation(n_tr)] for a in active])
        order += offsets[active, None]
        order_t = torch.from_numpy(order).to(device)
        for s in range(0, n_tr, bs):
            stack.step(order_t[:, s : s + bs], lr)
        epochs_run[active] += 1
        done = len(active) / epochs
        if early is not None:
            score = _val_scores(layout, activation, stack.param, stack.m, early.metric,
                                X_val_all, y_val_all, torch.from_numpy(val_rows[active]))
            improved = score > best_score[active]
            since_best[active] = np.where(improved, 0, since_best[active] + 1)
            best_score[active] = np.where(improved, score, best_score[active])
            if improved.any():
                pos = np.flatnonzero(improved)
                layout.put(best, m_total, torch.from_numpy(active[pos]).to(device),
                           stack.param, stack.m, torch.from_numpy(pos).to(device))
            stopping = since_best[active] >= early.patience
            if stopping.any():
                done += stopping.sum() * (epochs - epoch - 1) / epochs
                if q_final is not None:
                    q_final[active[stopping]] = weighting.q[torch.from_numpy(
                        np.flatnonzero(stopping)).to(device)].cpu().numpy()
                keep = np.flatnonzero(~stopping)
                active = active[keep]
                if len(active) == 0:
                    if progress is not None:
                        progress(done)
                    break
                stack.keep(torch.from_numpy(keep).to(device))
        if progress is not None:
            progress(done)

    final = best if best is not None else stack.param
    if q_final is not None and len(active):
        q_final[active] = weighting.q.cpu().numpy()
    stats, start = [], 0
    for j, m in enumerate(m_of_cell):
        part = slice(start, start + m)
        start += m
        stats.append(TrainStats(
            epochs=epochs_run[part].tolist(), samples=(epochs_run[part] * n_tr).tolist(),
            cells=[] if cells is None else [list(pc) for pc in cells[j].pairs],
            dro_weights=None if q_final is None else q_final[part, :cells[j].K].tolist()))
    return final, m_of_cell, stats


def flops_per_step(in_features: int, hidden: list[int], n_classes: int, batch: int) -> int:
    """Matmul FLOPs of one member's training step: forward plus both backward matmuls of each
    layer except the first layer's input gradient (2*m*n*k per matmul)."""
    sizes = layer_sizes(in_features, hidden, n_classes)
    total = 0
    for i, (fan_in, fan_out) in enumerate(sizes):
        total += (3 if i > 0 else 2) * 2 * batch * fan_in * fan_out
    return total


__all__ = ["flops_per_step", "lr_schedule", "train_stacked"]

