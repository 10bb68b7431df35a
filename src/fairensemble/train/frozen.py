"""Frozen-feature ensembles (``model.freeze: backbone``): an image model's backbone turns every
image into a feature vector once per run, and the members are heads (stacked MLPs with
``model.head_hidden`` layers; none: a linear head) trained on those features.

The backbone is the model with its classification head (``models.head_name``) replaced by the
identity, in eval mode, started from ``model.weights`` when given (else from a seed derived
from the run seed: every member shares it). Features are computed under ``train.precision``
on ``train.device`` and cached as ``features-<key>.npy`` beside the decoded images (same
folder rules, same file lock), keyed by the backbone (name, width, the weights' and a
factory's sha256, the seed), the images (the decoded cache file and a fingerprint of the
splits) and the precision, so every process of a run, and later runs, read them instead of
running the backbone again. The features are standardised with each training draw's own
statistics before the heads see them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fairensemble import models
from fairensemble.common.errors import ConfigError, DataError, UserError
from fairensemble.common.files import build_once, file_sha256, load_cached
from fairensemble.common.seeds import derive_seed, stable_hash
from fairensemble.config import ModelConfig, TrainConfig
from fairensemble.data.base import Dataset, Split
from fairensemble.data.decode import cache_root

log = logging.getLogger(__name__)

FEATURE_VERSION = 1
TEXT_BATCH = 256  # texts per call of a user's encoder
BATCH = 128  # images per backbone forward pass
FINGERPRINT_EVERY = 97  # every n-th image's bytes enter the images' fingerprint


@dataclass(frozen=True)
class Standardise:
    """``Dataset.prepare`` for features: centre and scale each feature by the training draw's
    mean and standard deviation (a constant feature is only centred)."""

    def __call__(self, train: Split, others: list[Split]) -> list[np.ndarray]:
        X = np.asarray(train.X, dtype=np.float64)
        mean, std = X.mean(0), X.std(0)
        std = np.where(std > 1e-12, std, 1.0)
        return [((np.asarray(s.X, dtype=np.float64) - mean) / std).astype(np.float32)
                for s in [train, *others]]


def backbone_identity(model: ModelConfig, seed: int) -> dict[str, Any]:
    """What determines the backbone's numbers (the head's fields do not)."""
    out: dict[str, Any] = {"name": model.name, "width": model.width, "seed": seed}
    if model.weights:
        out["weights"] = file_sha256(model.weights, "model.weights")
    if models.is_factory(model.name):
        out["factory"] = file_sha256(models.factory_file(model.name), "model.name")
    return out


def images_identity(ds: Dataset) -> dict[str, Any]:
    """A cheap fingerprint of the dataset's images in split order: the decoded cache file they
    come from, the split sizes, the labels and groups, and every ``FINGERPRINT_EVERY``-th
    image's bytes."""
    digest = hashlib.sha256()
    files = []
    for split in _splits(ds):
        X = split.X
        files.append(Path(X.filename).name if getattr(X, "filename", None) else None)
        digest.update(np.ascontiguousarray(split.y).tobytes())
        digest.update(np.ascontiguousarray(split.g).tobytes())
        for i in range(0, len(X), FINGERPRINT_EVERY):
            digest.update(np.ascontiguousarray(X[i]).tobytes())
    return {"files": files, "sizes": [len(s) for s in _splits(ds)],
            "content": digest.hexdigest()[:24]}


def feature_dataset(ds: Dataset, model: ModelConfig, train: TrainConfig, seed: int) -> Dataset:
    """``ds`` with every image replaced by its backbone features (float32 [n, d]), cached in
    the folder of its decoded images (``ds.cache_folder``; the default cache folder for images
    made in memory)."""
    if ds.input_kind not in ("image", "text"):
        raise ConfigError(f"model.freeze: 'backbone' needs image or text inputs, got "
                          f"{ds.input_kind} data")
    backbone_seed = derive_seed(seed, "backbone")
    text = ds.input_kind == "text"
    if text and not models.is_factory(model.name):
        raise ConfigError(f"model.name: frozen text features come from your encoder, "
                          f"'path/to/file.py:function' mapping a list of texts to a tensor "
                          f"[n, d], got {model.name!r}")
    key = stable_hash({"version": FEATURE_VERSION, "backbone": backbone_identity(model,
                                                                                backbone_seed),
                       "inputs": texts_identity(ds) if text else images_identity(ds),
                       "precision": train.precision}, 24)
    root = Path(ds.cache_folder) if ds.cache_folder else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"features-{key}.npy"

    def build(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, _encode(ds, model) if text else
                    _compute(ds, model, train, backbone_seed))

    feats = build_once(final, build, _open, "feature cache")
    first = ds.pool.X
    splits, start = [], 0
    for split in _splits(ds):
        splits.append(Split(feats[start:start + len(split)], split.y, split.g, split.votes))
        start += len(split)
    pool, test, *val = splits
    from fairensemble.models.flops import forward_flops

    per_image = None if models.is_factory(model.name) else forward_flops(  # built-ins only
        lambda: backbone(model, first.shape[1], first.shape[2], len(ds.classes), backbone_seed,
                         load=False), tuple(first.shape[1:]))
    info = {**ds.info, "features": {
        "file": str(final), "dim": int(feats.shape[1]), "backbone": model.name,
        "flops": None if per_image is None else per_image * len(feats)}}
    return replace(ds, pool=pool, test=test, val=val[0] if val else None, prepare=Standardise(),
                   input_kind="table", image_mean=None, image_std=None, hflip=False, info=info,
                   vocab=None)


def texts_identity(ds: Dataset) -> dict[str, Any]:
    """The texts in split order, by content."""
    digest = hashlib.sha256()
    for split in _splits(ds):
        for text in split.X:
            digest.update(text.encode("utf-8") + b"\x00")
    return {"sizes": [len(s) for s in _splits(ds)], "content": digest.hexdigest()[:24]}


def _encode(ds: Dataset, model: ModelConfig) -> np.ndarray:
    """Every text's embedding from the user's encoder (a list of texts -> a tensor or array
    [n, d]), in batches, checked: one row per text, finite numbers."""
    from fairensemble.common.arrays import as_array

    encode = models.resolve(model.name)
    out: list[np.ndarray] = []
    for split in _splits(ds):
        texts = [str(t) for t in split.X]
        for a in range(0, len(texts), TEXT_BATCH):
            batch = texts[a:a + TEXT_BATCH]
            try:
                got = as_array(encode(batch), f"model.name: {model.name}")
            except Exception as err:  # the user's code: its failure is one line naming it
                if isinstance(err, UserError):
                    raise
                raise ConfigError(f"model.name: {model.name} fails on {len(batch)} texts: "
                                  f"{type(err).__name__}: {str(err).strip()[:200]}") from None
            if got.ndim != 2 or len(got) != len(batch):
                raise ConfigError(f"model.name: {model.name} returns shape "
                                  f"{tuple(got.shape)} for {len(batch)} texts; expected "
                                  f"[{len(batch)}, d], one row per text")
            out.append(np.asarray(got, dtype=np.float32))
    feats = np.concatenate(out)
    if not np.isfinite(feats).all():
        raise DataError(f"model.name: {model.name} returned non-finite embeddings")
    return feats


def _splits(ds: Dataset) -> list[Split]:
    return [ds.pool, ds.test, *([ds.val] if ds.val is not None else [])]


def _open(path: Path) -> np.ndarray | None:
    arr = load_cached(path, "feature cache")
    return None if arr is None else np.asarray(arr, dtype=np.float32)


def backbone(model: ModelConfig, in_channels: int, image_size: int, n_classes: int,
             seed: int, load: bool = True) -> Any:
    """The image model with its head replaced by the identity (weights loaded unless not
    ``load``, eval mode)."""
    import torch
    from torch import nn

    from fairensemble.models.weights import load_weights, read_weights

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        options = models.accepted(model.name, {"width": model.width, "dropout": model.dropout})
        net = models.create(model.name, n_classes, in_channels=in_channels,
                            image_size=image_size, **options)
    if model.weights is not None and load:
        load_weights(net, read_weights(model.weights), f"model.weights: {model.weights}")
    setattr(net, models.head_name(net, model.name), nn.Identity())
    return net.eval()


def _compute(ds: Dataset, model: ModelConfig, train: TrainConfig, seed: int) -> np.ndarray:
    import torch

    from fairensemble.train.common import Normaliser, autocast, channels_last, choose_device

    device = choose_device(train.device)
    splits = _splits(ds)
    first = splits[0].X
    n_total = sum(len(s) for s in splits)
    net = backbone(model, first.shape[1], first.shape[2], len(ds.classes), seed).to(device)
    last = channels_last(net, device, train.precision)
    if last:
        net = net.to(memory_format=torch.channels_last)
    normalise = Normaliser(first.shape[1], ds.image_mean, ds.image_std, device)
    log.info("computing %s features of %d images", model.name, n_total)
    out: list[np.ndarray] = []
    with torch.inference_mode(), autocast(device, train.precision):
        for split in splits:
            for a in range(0, len(split), BATCH):
                raw = torch.from_numpy(np.ascontiguousarray(split.X[a:a + BATCH])).to(device)
                x = normalise(raw)
                if last:
                    x = x.contiguous(memory_format=torch.channels_last)
                out.append(net(x).float().flatten(1).cpu().numpy())
    feats = np.concatenate(out).astype(np.float32)
    if not np.isfinite(feats).all():
        raise DataError(f"model.freeze: the backbone of {model.name} produced non-finite "
                         "features")
    return feats


__all__ = ["Standardise", "backbone", "feature_dataset"]
