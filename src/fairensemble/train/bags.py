"""Stacked bag training: all members of all given cells of the hashed n-gram bag model
(``models/bag.py``) as one tensor program.

The M members' embeddings are one table [M x buckets, dim] (member m owns rows m x buckets ..),
their heads stacked weights [M, in, out]. A step looks up every member's batch in one
``embedding_bag`` call (member m's ids shifted into its block; padding weighs 0) and runs the
heads with batched matrix products; autograd does the rest, and the members' losses are
summed, so each member's gradient is its own. The embedding's gradient is sparse (the rows a
batch touched) and goes to SparseAdam, the heads' to Adam (``common.Optimizers``): both act
element-wise, so one update over the stack is M independent optimisers, and a member trains as
``HashedBag`` does alone in the loop trainer (same init, batch order, mitigation).

Early stopping keeps every member's best epoch: a member whose patience has run out keeps
training with the stack, but its best snapshot no longer changes, so its result is the one it
would have had alone.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from fairensemble.common import arrays
from fairensemble.common.errors import ConfigError, InputError
from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.models.bag import init_bag_params, mean_weights
from fairensemble.models.mlp import ACTIVATIONS
from fairensemble.train.common import (
    Optimizers,
    choose_device,
    early_stopping_score,
    lr_schedule,
)
from fairensemble.train.flat import ADAM_BETAS, ADAM_EPS
from fairensemble.train.mitigation import (
    BalancedBatches,
    Cells,
    check,
    dro_adjustment,
    dro_step,
    reweight,
)
from fairensemble.train.stacked import flops_per_step
from fairensemble.train.streams import (
    CellData,
    Progress,
    TrainStats,
    member_rows,
    member_streams,
    order_rng,
)

EVAL_ROWS = 512  # rows per prediction block


class EmbeddingStep:
    """The embedding's update from the bag vectors' gradient, on the rows a batch touched:
    each lookup's share of its bag's gradient summed per row, then the sparse optimiser's
    update on those rows: SparseAdam's (lazy Adam: moments and parameters of untouched rows
    stay as they are; the step count is global), or SGD's. The same numbers as torch's
    SparseAdam / SGD on a sparse gradient, without building one (which sorts every lookup)."""

    def __init__(self, emb: torch.Tensor, train: TrainConfig) -> None:
        self.emb, self.sgd = emb, train.optimizer == "sgd"
        self.m = None if self.sgd else torch.zeros_like(emb)
        self.v = None if self.sgd else torch.zeros_like(emb)
        self.t = 0

    @torch.no_grad()
    def __call__(self, flat: torch.Tensor, weights: torch.Tensor, h: torch.Tensor,
                 lr: float) -> None:
        used = weights > 0
        share = weights[used].unsqueeze(1) * torch.repeat_interleave(h.grad, used.sum(dim=1),
                                                                     dim=0)
        rows, inverse = torch.unique(flat[used], return_inverse=True)
        grad = torch.zeros((len(rows), self.emb.shape[1]), device=flat.device).index_add_(
            0, inverse, share)
        if self.sgd:
            self.emb.index_add_(0, rows, grad, alpha=-lr)
            return
        self.t += 1
        beta1, beta2 = ADAM_BETAS
        old_m, old_v = self.m[rows], self.v[rows]
        m_update = (grad - old_m).mul_(1 - beta1)
        v_update = grad.pow(2).sub_(old_v).mul_(1 - beta2)
        numer = m_update.add_(old_m)
        v_new = v_update.add_(old_v)
        self.m[rows], self.v[rows] = numer, v_new
        denom = v_new.sqrt().add_(ADAM_EPS)
        step = lr * math.sqrt(1 - beta2 ** self.t) / (1 - beta1 ** self.t)
        self.emb.index_add_(0, rows, numer.div(denom), alpha=-step)


class _Members:
    """M members' parameters: the embedding table [M * V, dim] and per head layer weights
    [M, in, out] and biases [M, 1, out]."""

    def __init__(self, seeds: list[int], vocab: int, dim: int, hidden: list[int],
                 n_classes: int, device: torch.device) -> None:
        embs, heads = zip(*(init_bag_params(s, vocab, dim, hidden, n_classes) for s in seeds))
        self.M, self.V = len(seeds), vocab
        self.emb = torch.cat(embs).to(device)  # its gradient is taken by hand (``step``)
        self.W = [torch.stack([h[i][0] for h in heads]).to(device).requires_grad_()
                  for i in range(len(heads[0]))]
        self.b = [torch.stack([h[i][1] for h in heads]).unsqueeze(1).to(device)
                  .requires_grad_() for i in range(len(heads[0]))]

    @property
    def dense(self) -> list[torch.Tensor]:
        return [*self.W, *self.b]

    def logits(self, ids: torch.Tensor, act: str, which: torch.Tensor | None = None,
               bags: list | None = None) -> torch.Tensor:
        """Logits [m, n, C] of the members ``which`` (default: all M) on their rows ``ids``
        [m, n, L]. ``bags``: a list that receives (ids, weights, bag vectors) of a training
        step, the bag vectors a leaf whose gradient ``EmbeddingStep`` turns into the
        embedding's."""
        m, n, L = ids.shape
        which = torch.arange(m, device=ids.device) if which is None else which
        flat = (ids.long() + (which * self.V).view(m, 1, 1)).view(m * n, L)
        weights = mean_weights(flat % self.V)
        h = F.embedding_bag(flat, self.emb, per_sample_weights=weights, mode="sum")
        if bags is not None:
            h.requires_grad_()
            bags.append((flat, weights, h))
        h = h.view(m, n, -1)
        for i, (w, b) in enumerate(zip(self.W, self.b)):
            h = torch.baddbmm(b[which], h, w[which])
            if i < len(self.W) - 1:
                h = _activation(act, h)
        return h

    def snapshot(self) -> list[torch.Tensor]:
        return [self.emb.detach().clone(), *(p.detach().clone() for p in self.dense)]

    def keep_best(self, best: list[torch.Tensor], members: np.ndarray) -> None:
        """``best`` takes the current parameters of ``members``."""
        rows = torch.from_numpy(members).to(self.emb.device)
        block = (rows[:, None] * self.V + torch.arange(self.V, device=rows.device)).view(-1)
        best[0][block] = self.emb.detach()[block]
        for b, p in zip(best[1:], self.dense):
            b[rows] = p.detach()[rows]

    def load(self, best: list[torch.Tensor]) -> None:
        with torch.no_grad():
            self.emb.copy_(best[0])
            for p, b in zip(self.dense, best[1:]):
                p.copy_(b)


def _activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "relu":
        return F.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "leaky_relu":
        return F.leaky_relu(x)
    return F.gelu(x)


def train_bags(
    cells: list[CellData],
    model: ModelConfig,
    train: TrainConfig,
    n_classes: int,
    progress: Progress | None = None,
    stats: list[TrainStats] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Train every member of every cell (the bag model on id bags [n, L]) and return, per
    cell, ``{eval name: probs}`` float32 [E, n_eval, C]; ``stats`` gets a ``TrainStats`` per
    cell, as ``train_stacked``'s. Cells with the same number of training rows train as one
    stack."""
    if not cells:
        raise InputError("cells: expected at least one cell")
    if model.activation not in ACTIVATIONS:
        raise ConfigError(f"model.activation: expected one of {list(ACTIVATIONS)}")
    vocab = cells[0].inputs.vocab
    if vocab is None:
        raise InputError("cells[0].inputs.vocab: the bag model needs the bucket count")
    device = choose_device(train.device)
    X = [_bags(c.X_train, f"cells[{i}].X_train", vocab) for i, c in enumerate(cells)]
    y = [arrays.codes(c.y_train, f"cells[{i}].y_train", len(x), n_classes)
         for i, (c, x) in enumerate(zip(cells, X))]
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, x in enumerate(X):
        by_size[len(x)].append(i)
    results: list[dict[str, np.ndarray]] = [{} for _ in cells]
    cell_stats: list[TrainStats | None] = [None] * len(cells)
    for idx in by_size.values():
        members, fitted = _fit(idx, cells, X, y, vocab, model, train, n_classes, device,
                               progress)
        start = 0
        for i, st in zip(idx, fitted):
            E = len(cells[i].member_seeds)
            part = np.arange(start, start + E)
            start += E
            mean_len = float((X[i] != 0).sum(axis=1).mean())
            st.flops_per_sample = float(4 * model.width * mean_len + flops_per_step(
                model.width, list(model.head_hidden), n_classes, 1))
            cell_stats[i] = st
            for name, Xe in cells[i].evals.items():
                results[i][name] = _predict(members, part, _bags(Xe, name, vocab),
                                            model.activation, device)
    if stats is not None:
        stats.extend(cell_stats)
    return results


def _bags(x: object, where: str, vocab: int) -> np.ndarray:
    arr = arrays.as_array(x, where)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{where}: expected id bags int [n, L], got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise InputError(f"{where}: expected ids in 0..{vocab - 1}")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _fit(idx: list[int], cells: list[CellData], X: list[np.ndarray], y: list[np.ndarray],
         vocab: int, model: ModelConfig, train: TrainConfig, n_classes: int,
         device: torch.device, progress: Progress | None) -> tuple[_Members, list[TrainStats]]:
    """Train the members of same-sized cells together."""
    n = len(X[idx[0]])
    width = max(X[i].shape[1] for i in idx)
    X_all = torch.from_numpy(np.concatenate([_pad(X[i], width) for i in idx])).to(device)
    y_all = torch.from_numpy(np.concatenate([y[i] for i in idx])).to(device)
    seeds = [list(cells[i].member_seeds) for i in idx]
    m_of_cell = [len(s) for s in seeds]
    streams = [st for s in seeds for st in member_streams(s, train.diversity)]
    cell_of = np.repeat(np.arange(len(idx)), m_of_cell)
    offsets = cell_of * n
    M = len(streams)
    members = _Members([st.init for st in streams], vocab, model.width,
                       list(model.head_hidden), n_classes, device)
    opt = Optimizers(members.dense, [], train, device)
    emb_step = EmbeddingStep(members.emb, train)
    kind = train.mitigation
    mit = [_cells(cells[i], y[i], kind, n_classes, i) for i in idx] if kind != "none" else None

    early = train.early_stopping
    holdout = early is not None and cells[idx[0]].val is None
    splits = [member_rows(st, n, early.val_fraction if holdout else None) for st in streams]
    train_rows = [tr for tr, _ in splits]
    n_tr = len(train_rows[0])
    w_all = code_all = q = adjust = None
    if kind == "reweight":
        w_all = torch.from_numpy(np.concatenate([reweight(c) for c in mit])).to(device)
    elif kind == "group_dro":
        code_all = torch.from_numpy(np.concatenate([c.code for c in mit])).to(device)
        K = max(c.K for c in mit)
        q_np, adj_np = np.zeros((M, K), np.float32), np.zeros((M, K), np.float32)
        for a in range(M):
            c = mit[cell_of[a]]
            q_np[a, :c.K] = 1.0 / c.K
            adj_np[a, :c.K] = dro_adjustment(c, train.dro_adjust)
        q, adjust = torch.from_numpy(q_np).to(device), torch.from_numpy(adj_np).to(device)
    codes = ([BalancedBatches(mit[cell_of[a]].code[train_rows[a]]) for a in range(M)]
             if kind == "balanced" else [])
    rngs = [order_rng(st.order) for st in streams]
    val = _val(cells, idx, X, y, splits, holdout, offsets, width, device) if early else None
    best = members.snapshot() if early is not None else None
    best_score = np.full(M, -np.inf)
    since = np.zeros(M, dtype=np.int64)
    stopped = np.zeros(M, dtype=bool)
    epochs_run = np.zeros(M, dtype=np.int64)
    bs, act = train.batch_size, model.activation
    for epoch, lr in enumerate(lr_schedule(train)):
        for group in opt.param_groups:
            group["lr"] = lr
        if kind == "balanced":
            order = np.stack([train_rows[a][codes[a].epoch(bs, rngs[a])]
                              for a in range(M)])
        else:
            order = np.stack([train_rows[a][rngs[a].permutation(n_tr)] for a in range(M)])
        order = torch.from_numpy(order + offsets[:, None]).to(device)
        for s in range(0, n_tr, bs):
            rows = order[:, s:s + bs]
            b = rows.shape[1]
            bags: list = []
            logits = members.logits(X_all[rows], act, bags=bags)
            ce = F.cross_entropy(logits.reshape(M * b, -1), y_all[rows].reshape(-1),
                                 reduction="none").view(M, b)
            if w_all is not None:
                ce = ce * w_all[rows]
            elif q is not None:
                ce = ce * dro_step(ce.detach(), code_all[rows], q, adjust, train.dro_step)
            opt.zero_grad(set_to_none=True)
            ce.mean(dim=1).sum().backward()
            opt.step()
            emb_step(*bags[0], lr)
        epochs_run[~stopped] += 1
        if early is not None:
            score = _scores(members, val, early.metric, act)
            improved = (score > best_score) & ~stopped
            since = np.where(improved, 0, since + 1)
            best_score = np.where(improved, score, best_score)
            if improved.any():
                members.keep_best(best, np.flatnonzero(improved))
            stopped |= since >= early.patience
        if stopped.all():
            if progress is not None:
                progress(M * (train.epochs - epoch) / train.epochs)
            break
        if progress is not None:
            progress(M / train.epochs)
    if best is not None:
        members.load(best)
    stats, start = [], 0
    for j, m in enumerate(m_of_cell):
        part = slice(start, start + m)
        start += m
        stats.append(TrainStats(
            epochs=epochs_run[part].tolist(), samples=(epochs_run[part] * n_tr).tolist(),
            cells=[] if mit is None else [list(pc) for pc in mit[j].pairs],
            dro_weights=None if q is None else q[part, :mit[j].K].cpu().tolist()))
    return members, stats


def _cells(cell: CellData, y: np.ndarray, kind: str, n_classes: int, i: int) -> Cells:
    if cell.g_train is None:
        raise InputError(f"cells[{i}].g_train: train.mitigation {kind!r} needs the training "
                         "rows' group codes")
    g = arrays.codes(cell.g_train, f"cells[{i}].g_train", len(y), np.iinfo(np.int64).max,
                     "group codes")
    cells = Cells.of(y, g, n_classes)
    check(kind, cells, f"cells[{i}]")
    return cells


def _pad(x: np.ndarray, width: int) -> np.ndarray:
    return x if x.shape[1] == width else np.pad(x, ((0, 0), (0, width - x.shape[1])))


def _val(cells, idx, X, y, splits, holdout, offsets, width, device):
    """Each member's early-stopping rows: its hold-out of the training rows, or the cell's
    validation split, as (ids [M, n_val, L], labels [M, n_val])."""
    if holdout:
        rows = np.stack([va for _, va in splits]) + offsets[:, None]
        X_all = np.concatenate([_pad(X[i], width) for i in idx])
        y_all = np.concatenate([y[i] for i in idx])
        return torch.from_numpy(X_all[rows]).to(device), torch.from_numpy(y_all[rows]).to(device)
    vals = [cells[i].val for i in idx]
    w = max(width, max(np.asarray(v[0]).shape[1] for v in vals))
    per_member = [(np.asarray(v[0], dtype=np.int32), np.asarray(v[1], dtype=np.int64))
                  for i, v in zip(idx, vals) for _ in cells[i].member_seeds]
    Xv = np.stack([_pad(x, w) for x, _ in per_member])
    yv = np.stack([t for _, t in per_member])
    return torch.from_numpy(Xv).to(device), torch.from_numpy(yv).to(device)


@torch.no_grad()
def _scores(members: _Members, val, metric: str, act: str) -> np.ndarray:
    Xv, yv = val
    out = []
    for a in range(0, Xv.shape[1], EVAL_ROWS):
        out.append(members.logits(Xv[:, a:a + EVAL_ROWS], act))
    return early_stopping_score(metric, torch.cat(out, dim=1), yv)


@torch.no_grad()
def _predict(members: _Members, part: np.ndarray, X: np.ndarray, act: str,
             device: torch.device) -> np.ndarray:
    """Probabilities [E, n, C] of the members ``part``."""
    which = torch.from_numpy(part).to(device)
    out = []
    for a in range(0, len(X), EVAL_ROWS):
        ids = torch.from_numpy(X[a:a + EVAL_ROWS]).to(device)
        logits = members.logits(ids.unsqueeze(0).expand(len(part), -1, -1), act, which)
        out.append(torch.softmax(logits, dim=-1).cpu())
    return torch.cat(out, dim=1).numpy().astype(np.float32)


__all__ = ["train_bags"]
