"""The generic member trainer: any ``nn.Module``, members trained one after another.

Same interface as the stacked trainer: ``train_loop(cells, model, train, n_classes)`` returns,
per cell, ``{eval_name: probs float32 [E, n_eval, C]}``.

A member is a pure function of its streams' seeds (``member_streams``: its own seed for the
sources in ``train.diversity``, the cell's first seed for the rest), and the same streams as
the stacked trainer's: the mini-batch order from ``order_rng(seed)``, the early-stopping
holdout and bootstrap resample from ``member_rows``, initialisation (and dropout) from a
forked torch RNG seeded with the seed (an MLP member starts from ``init_mlp_params(seed, ...)``,
as in the stack), and horizontal flips from a stream of their own. No global RNG state leaks
in or out. With ``model.weights`` every member starts from the loaded weights; a replaced
head keeps its fresh initialisation from the member's init stream.
On CPU the trainer runs with deterministic algorithms and a fixed thread count, so the same
config gives bit-identical probabilities. On CUDA it trades that for speed (cuDNN autotuning).
``train.precision: bf16`` autocasts to bfloat16 (CPU or CUDA) and runs convolutional nets in
channels-last memory (always on CUDA).

Soft targets (``CellData.soft_train``, the raters' label distribution) replace the labels in
the loss: torch's cross-entropy against class probabilities, mitigations weighting it as
they weight the plain one.

Images arrive as uint8 [n, C, H, W] (possibly a ``np.memmap``); each batch is converted to
float on the device, scaled to [0, 1] and normalised with the cell's ``inputs.image_mean`` /
``image_std``. ``model.name`` may be a built-in name or a user's factory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairensemble import models
from fairensemble.common import arrays
from fairensemble.common.errors import ConfigError, InputError
from fairensemble.common.files import atomic_path
from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.models.flops import training_flops
from fairensemble.models.weights import load_weights, read_weights
from fairensemble.train.common import (
    Normaliser,
    autocast,
    channels_last,
    choose_device,
    early_stopping_score,
    lr_schedule,
    optimizers,
)
from fairensemble.train.mitigation import (
    Cells,
    balanced_order,
    check,
    dro_adjustment,
    dro_step,
    reweight,
)
from fairensemble.train.streams import (
    CellData,
    MemberStreams,
    Progress,
    TrainStats,
    augment_rng,
    checked_soft,
    member_rows,
    member_streams,
    order_rng,
)

# uint8 training images up to this size are moved to the GPU once instead of per batch
_DEVICE_RESIDENT_BYTES = 2 << 30
_PROGRESS_EVERY = 5  # batches between progress calls


def train_loop(
    cells: list[CellData],
    model: ModelConfig,
    train: TrainConfig,
    n_classes: int,
    progress: Progress | None = None,
    save_dir: Path | None = None,
    stats: list[TrainStats] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Train ``len(cell.member_seeds)`` members per cell; return their predicted probabilities.
    ``stats``, when given, gets a ``TrainStats`` per cell (as ``train_stacked``'s). Under a
    ``train.mitigation`` each cell's ``g_train`` gives its rows' groups.

    ``progress(delta)`` receives increments in members (fractions while a member trains; each
    member's increments sum to 1). With ``train.save_models`` and ``save_dir``, member i's state
    dict is written to ``save_dir/member-<i>.safetensors`` (``save_dir/cell-<j>/...`` when
    several cells are passed at once)."""
    device = choose_device(train.device)
    pretrained = read_weights(model.weights) if model.weights is not None else None
    results = []
    with _determinism(device, cells):
        for j, cell in enumerate(cells):
            inputs = _Inputs(cell, model, n_classes, device, pretrained, train.precision)
            cell_dir = None
            if train.save_models and save_dir is not None:
                cell_dir = Path(save_dir) if len(cells) == 1 else Path(save_dir) / f"cell-{j}"
                cell_dir.mkdir(parents=True, exist_ok=True)
            probs: dict[str, list[np.ndarray]] = {name: [] for name in cell.evals}
            streams = member_streams(cell.member_seeds, train.diversity)
            mitigated = _Mitigated.of(cell, inputs, train, n_classes, j)
            cell_stats = TrainStats([], [], inputs.flops(model),
                                    mitigated.pairs, [] if mitigated.q0 is not None else None)
            for i, member in enumerate(streams):
                net = _train_member(inputs, member, model, train, progress, mitigated,
                                    cell_stats)
                for name, X in cell.evals.items():
                    probs[name].append(inputs.predict(net, X, train.batch_size))
                if cell_dir is not None:
                    _save(net, cell_dir / f"member-{i}.safetensors")
            results.append({name: np.stack(p).astype(np.float32) for name, p in probs.items()})
            if stats is not None:
                stats.append(cell_stats)
    return results


class _Mitigated:
    """A cell's mitigation as the loop trainer applies it to one member at a time: per-row
    weights (``reweight``), cell codes for balanced batches, or Group DRO's starting weights
    and adjustment (``mitigation.py`` holds the maths every trainer shares)."""

    def __init__(self, kind: str, eta: float, cells: Cells | None, w: torch.Tensor | None,
                 code: torch.Tensor | None, q0: np.ndarray | None,
                 adjust: torch.Tensor | None) -> None:
        self.kind, self.eta, self.cells = kind, eta, cells
        self.w, self.code, self.q0, self.adjust = w, code, q0, adjust

    @property
    def pairs(self) -> list[list[int]]:
        return [] if self.cells is None else [list(pc) for pc in self.cells.pairs]

    @classmethod
    def of(cls, cell: CellData, inputs: _Inputs, train: TrainConfig, n_classes: int,
           j: int) -> _Mitigated:
        kind = train.mitigation
        if kind == "none":
            return cls(kind, 0.0, None, None, None, None, None)
        if cell.g_train is None:
            raise InputError(f"cells[{j}].g_train: train.mitigation {kind!r} needs the "
                             "training rows' group codes")
        g = arrays.codes(cell.g_train, f"cells[{j}].g_train", len(inputs.y_np),
                         np.iinfo(np.int64).max, "group codes")
        cells = Cells.of(inputs.y_np, g, n_classes)
        check(kind, cells, f"cells[{j}]")
        device = inputs.device
        w = torch.from_numpy(reweight(cells)).to(device) if kind == "reweight" else None
        code = torch.from_numpy(cells.code).to(device)
        q0 = adjust = None
        if kind == "group_dro":
            q0 = np.full((1, cells.K), 1.0 / cells.K, dtype=np.float32)
            adjust = torch.from_numpy(dro_adjustment(cells, train.dro_adjust)).to(device)
        return cls(kind, train.dro_step, cells, w, code, q0, adjust)

    def order(self, train_idx: np.ndarray, batch_size: int, rng: np.random.Generator
              ) -> np.ndarray:
        """One epoch's row order: a permutation, or balanced batches."""
        if self.kind == "balanced":
            return train_idx[balanced_order(self.cells.code[train_idx], batch_size, rng)]
        return train_idx[rng.permutation(len(train_idx))]

    def loss(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
             q: torch.Tensor | None) -> torch.Tensor:
        """The batch's loss: the mean cross-entropy, each sample weighted as the mitigation
        says (Group DRO updates the member's weights ``q`` first). ``y``: class codes, or soft
        targets [b, C] (torch's cross-entropy takes class probabilities)."""
        if self.kind in ("none", "balanced"):
            if y.is_floating_point():  # soft targets: in fp32 whatever the autocast
                return F.cross_entropy(logits.float(), y)
            return F.cross_entropy(logits, y)
        ce = F.cross_entropy(logits.float(), y, reduction="none")
        if self.kind == "reweight":
            return (ce * self.w[idx]).mean()
        weights = dro_step(ce.detach()[None], self.code[idx][None], q, self.adjust, self.eta)
        return (ce * weights[0]).mean()


# ----------------------------------------------------------------------------- one member


def _train_member(
    inputs: _Inputs,
    member: MemberStreams,
    model: ModelConfig,
    train: TrainConfig,
    progress: Progress | None,
    mitigated: _Mitigated,
    stats: TrainStats,
) -> nn.Module:
    rng_order = order_rng(member.order)
    rng_aug = augment_rng(member.augment)
    device = inputs.device
    fork = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(member.init)
        net = inputs.build(model, member.init)
        train_idx, val = inputs.split(train, member)
        opt = optimizers(net, train, device)
        stop = train.early_stopping
        best: tuple[float, dict[str, torch.Tensor]] | None = None
        stale = 0
        n_batches = len(inputs.bounds(len(train_idx), train.batch_size))
        total, done, reported = train.epochs * n_batches, 0, 0
        q = None if mitigated.q0 is None else torch.from_numpy(mitigated.q0.copy()).to(device)
        epochs = 0
        for lr in lr_schedule(train):  # one rate per epoch, torch's scheduler semantics
            for group in opt.param_groups:
                group["lr"] = lr
            _train_mode(net, model.freeze_norm)
            order = mitigated.order(train_idx, train.batch_size, rng_order)
            epochs += 1
            for xb, yb, idx in inputs.batches(order, train.batch_size, rng_aug):
                with inputs.autocast():
                    loss = mitigated.loss(net(xb), yb, idx, q)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
                if progress is not None and (done - reported >= _PROGRESS_EVERY):
                    progress((done - reported) / total)
                    reported = done
            if stop is not None:
                score = inputs.score(net, val, stop.metric, train.batch_size)
                if best is None or score > best[0]:
                    best = (score, {k: v.detach().clone() for k, v in net.state_dict().items()})
                    stale = 0
                else:
                    stale += 1
                    if stale >= stop.patience:
                        break
        if best is not None:
            net.load_state_dict(best[1])
    stats.epochs.append(epochs)
    stats.samples.append(epochs * len(train_idx))
    if q is not None:
        stats.dro_weights.append(q[0].cpu().tolist())
    if progress is not None:
        progress((total - reported) / total)  # early stopping: the member is finished all the same
    net.eval()
    return net


def _train_mode(net: nn.Module, freeze_norm: bool) -> None:
    """Training mode; with ``freeze_norm`` batch norm stays in eval mode, normalising with the
    running statistics it was loaded with instead of small batches' own."""
    net.train()
    if freeze_norm:
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                m.eval()


def _batch_bounds(n: int, batch_size: int, merge_single: bool = True) -> list[tuple[int, int]]:
    """Consecutive [start, stop) slices; with ``merge_single`` a last batch of one sample joins
    the one before (batch norm cannot normalise a single sample with 1x1 feature maps)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if merge_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _save(net: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


# ----------------------------------------------------------------------------- inputs


class _Inputs:
    """One cell's inputs on one device: model construction, batches, prediction, scoring."""

    def __init__(
        self,
        cell: CellData,
        model: ModelConfig,
        n_classes: int,
        device: torch.device,
        pretrained: dict[str, torch.Tensor] | None = None,
        precision: str = "fp32",
    ) -> None:
        self.cell, self.device, self.n_classes = cell, device, n_classes
        self.pretrained, self.precision = pretrained, precision
        spec = cell.inputs
        X = cell.X_train
        self.kind = spec.kind or ("image" if np.ndim(X) == 4 else "table")
        _check_inputs("X_train", X, self.kind)
        if len(X) == 0:
            raise InputError("y_train: expected at least one training sample, got none")
        y = arrays.codes(cell.y_train, "y_train", len(X), n_classes)
        for name, Xe in cell.evals.items():
            _check_inputs(f"evals[{name!r}]", Xe, self.kind, X.shape[1:])
        if cell.val is not None:
            _check_inputs("val", cell.val[0], self.kind, X.shape[1:])
        if self.kind == "tokens" and model.name != "bag" and not models.is_factory(model.name):
            raise ConfigError(f"model.name: text inputs need 'bag' or a factory, got "
                              f"{model.name!r}")
        if self.kind == "table" and model.name != "mlp" and not models.is_factory(model.name):
            raise ConfigError(f"model.name: table inputs need 'mlp' or a factory, got "
                             f"{model.name!r}")
        if self.kind == "image" and model.name == "mlp":
            raise ConfigError("model.name: image inputs need an image model, got 'mlp'")

        self.cuda = device.type == "cuda"
        self.hflip = spec.hflip and self.kind == "image"
        self.num_workers = spec.num_workers
        # X stays a numpy array (memmap: read per batch) unless it can live on the device
        self.X_np = X
        self.X_t: torch.Tensor | None = None
        if not isinstance(X, np.memmap):
            dtype = {"image": np.uint8, "tokens": np.int64}.get(self.kind, np.float32)
            arr = np.ascontiguousarray(X, dtype=dtype)
            self.X_np = arr
            if not self.cuda or arr.nbytes <= _DEVICE_RESIDENT_BYTES:
                self.X_t = torch.from_numpy(arr).to(device)
                self.num_workers = 0
        self.y_t = torch.from_numpy(y.astype(np.int64)).to(device)
        self.y_np = y.astype(np.int64)
        # what the loss is taken against: the labels, or the cell's soft targets
        self.target_t = self.y_t if cell.soft_train is None else torch.from_numpy(
            checked_soft(cell.soft_train, len(X), n_classes, "soft_train")).to(device)
        if self.kind == "image":
            self.normalise = Normaliser(X.shape[1], spec.image_mean, spec.image_std, device)
        self.channels_last = False

    # -- model ---------------------------------------------------------------------------
    def create(self, model: ModelConfig, seed: int) -> nn.Module:
        """The member's model as constructed (on the current default device, untrained)."""
        shape = self.X_np.shape
        if model.name == "mlp":
            # MLP's own seeded initialisation: the same start as the stacked trainer's member
            return models.create(
                "mlp", self.n_classes, in_features=shape[1], hidden=list(model.hidden),
                activation=model.activation, dropout=model.dropout, seed=seed,
            )
        if model.name == "bag":  # the stacked bag trainer's member, for the same seed
            return models.create("bag", self.n_classes, vocab=self.cell.inputs.vocab,
                                 dim=model.width, hidden=list(model.head_hidden),
                                 activation=model.activation, seed=seed)
        if model.name.startswith("vit") and shape[2] != shape[3]:
            raise ConfigError(f"model.name: {model.name} needs square images, got {shape[2:]}")
        options = models.accepted(model.name, {"width": model.width, "dropout": model.dropout})
        context = ({"in_channels": shape[1], "image_size": shape[2]}
                   if self.kind == "image" else {"in_channels": shape[1]})
        return models.create(model.name, self.n_classes, **context, **options)

    def build(self, model: ModelConfig, seed: int) -> nn.Module:
        net = self.create(model, seed)
        if model.name != "mlp" and self.pretrained is not None:
            load_weights(net, self.pretrained, f"model.weights: {model.weights}")
        net = net.to(self.device)
        self.channels_last = self.kind == "image" and channels_last(net, self.device,
                                                                    self.precision)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net

    def flops(self, model: ModelConfig) -> float | None:
        """FLOPs of one training sample of the member's model: the built-in models' (a user's
        factory is not run for it: None)."""
        if models.is_factory(model.name):
            return None
        return training_flops(lambda: self.create(model, 0), tuple(self.X_np.shape[1:]))

    def autocast(self) -> Any:
        return autocast(self.device, self.precision)

    # -- data ----------------------------------------------------------------------------
    def bounds(self, n: int, batch_size: int) -> list[tuple[int, int]]:
        # batch norm (image models) cannot train on one sample; MLPs batch as the stack does
        return _batch_bounds(n, batch_size, merge_single=self.kind == "image")

    def split(
        self, train: TrainConfig, member: MemberStreams
    ) -> tuple[np.ndarray, tuple[Any, np.ndarray] | None]:
        """Training indices (a bootstrap resample under ``bootstrap``) and the early-stopping
        (X, y): ``cell.val``, or a holdout drawn from the member's stream, or None without
        early stopping."""
        stop = train.early_stopping
        holdout = stop is not None and self.cell.val is None
        train_idx, val_idx = member_rows(member, len(self.y_np),
                                         stop.val_fraction if holdout else None)
        if val_idx is not None:
            return train_idx, (self._take(val_idx), self.y_np[val_idx])
        return train_idx, self.cell.val if stop is not None else None

    def _take(self, idx: np.ndarray) -> np.ndarray:
        return self.X_np[idx]

    def batches(
        self, order: np.ndarray, batch_size: int, rng_aug: np.random.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(inputs, targets, row indices) on the device, in ``order``: the targets are the
        labels, or the soft targets [b, C]; indices sorted within a batch (a batch is a set;
        sorted reads are kind to memory-mapped files)."""
        index_batches = [np.sort(order[a:b]) for a, b in self.bounds(len(order), batch_size)]
        for idx, raw in zip(index_batches, self._raw_batches(index_batches)):
            flip = rng_aug.random(len(idx)) < 0.5 if self.hflip else None
            rows = torch.from_numpy(idx).to(self.device)
            yield self.to_input(raw, flip), self.target_t[rows], rows

    def _raw_batches(self, index_batches: list[np.ndarray]) -> Iterator[torch.Tensor]:
        if self.X_t is not None:
            for idx in index_batches:
                yield self.X_t[torch.from_numpy(idx).to(self.device)]
        elif self.num_workers > 0:
            loader = torch.utils.data.DataLoader(
                _IndexBatches(self.X_np, index_batches), batch_size=None,
                num_workers=self.num_workers, pin_memory=self.cuda,
            )
            for raw in loader:
                yield raw.to(self.device, non_blocking=True)
        else:
            for idx in index_batches:
                yield _from_numpy(self.X_np[idx], self.cuda).to(self.device, non_blocking=True)

    def to_input(self, raw: torch.Tensor, flip: np.ndarray | None = None) -> torch.Tensor:
        if self.kind in ("table", "tokens"):
            return raw
        if flip is not None and flip.any():
            mask = torch.from_numpy(flip).to(self.device).view(-1, 1, 1, 1)
            raw = torch.where(mask, raw.flip(-1), raw)
        x = self.normalise(raw)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # -- evaluation ----------------------------------------------------------------------
    @torch.inference_mode()
    def logits(self, net: nn.Module, X: Any, batch_size: int) -> torch.Tensor:
        net.eval()
        step = max(batch_size, 256)
        out = []
        for a in range(0, len(X), step):
            raw = _from_numpy(np.asarray(X[a : a + step]), self.cuda).to(self.device)
            with self.autocast():
                out.append(net(self.to_input(raw)).float())
        if not out:
            return torch.zeros(0, self.n_classes, device=self.device)
        return torch.cat(out)

    def predict(self, net: nn.Module, X: Any, batch_size: int) -> np.ndarray:
        return torch.softmax(self.logits(net, X, batch_size), dim=1).cpu().numpy()

    def score(self, net: nn.Module, val: tuple[Any, np.ndarray], metric: str, bs: int) -> float:
        """Early-stopping score, higher is better (``loss`` is negated)."""
        logits = self.logits(net, val[0], bs)
        # a copy: the labels may be a read-only array
        y = torch.tensor(np.asarray(val[1]), dtype=torch.int64, device=self.device)
        net.train()
        return float(early_stopping_score(metric, logits[None], y[None])[0])


class _IndexBatches(torch.utils.data.Dataset):
    """Batch i = rows ``index_batches[i]`` of X, read in a worker process."""

    def __init__(self, X: np.ndarray, index_batches: list[np.ndarray]) -> None:
        self.X, self.index_batches = X, index_batches

    def __len__(self) -> int:
        return len(self.index_batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.X[self.index_batches[i]]))


def _from_numpy(arr: np.ndarray, pin: bool) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.pin_memory() if pin else t


def _check_inputs(name: str, X: Any, kind: str, shape: tuple[int, ...] | None = None) -> None:
    if kind == "image":
        arrays.images(X, name, shape)
        return
    if np.ndim(X) != 2:
        raise InputError(f"{name}: expected a float feature matrix [n, d], got {np.ndim(X)} "
                         "dimensions")
    if shape is not None and tuple(X.shape[1:]) != tuple(shape):
        raise InputError(f"{name}: expected rows of shape {tuple(shape)}, got {X.shape[1:]}")


# ----------------------------------------------------------------------------- determinism


@contextmanager
def _determinism(device: torch.device, cells: list[CellData]) -> Iterator[None]:
    """CPU: deterministic algorithms and a fixed thread count (``inputs.threads``, default
    the current count), restored afterwards. CUDA: cuDNN autotuning instead (fast, not
    bit-reproducible)."""
    if device.type == "cuda":
        prev = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = prev
        return
    det = torch.utils.deterministic
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_fill = det.fill_uninitialized_memory
    prev_threads = torch.get_num_threads()
    threads = next((c.inputs.threads for c in cells if c.inputs.threads), prev_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    # NaN-filling every new tensor only helps find bugs, and costs ~20% of a small CNN's step
    det.fill_uninitialized_memory = False
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        det.fill_uninitialized_memory = prev_fill
        torch.set_num_threads(prev_threads)
