"""From the decisions to a proposal: the config's fields, with comments saying what each
inferred value is and why, sized for the machine it will run on (an MLP on a CPU, an image
model on a GPU with a CPU-sized try)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fairensemble.advice.scaffold.decide import (
    CPU_EPOCHS,
    CPU_IMAGES,
    CPU_MEMBERS,
    CPU_POOL,
    CPU_RATIOS,
    CPU_TEXT_MAX,
    CPU_TRAIN_MAX,
    EPOCHS_RANGE,
    MIN_TEST_PER_CLASS,
    RATIOS,
    TARGET_STEPS,
    TEXT_EPOCHS,
    TEXT_STEPS,
    Counts,
    Proposal,
    mlp_epochs,
    pick_ratio_group,
    propose_train_size,
)
from fairensemble.config import RunConfig, shipped_config, validate
from fairensemble.data.sampling import (
    stratified_subsample,
)
from fairensemble.sweep.plan import moved_indices

# ----------------------------------------------------------------------------- assembly


def _finish(
    *, kind: str, name: str, dataset: dict, ds: Any, counts: Counts, requested_rg: str | None,
    facts: list[str], notes: list[str], comments: dict[str, str],
    pool_parts: tuple[np.ndarray, np.ndarray] | None = None, test: Counts | None = None,
    attributes: list[str] | None = None, group_values: list[list[str]] | None = None,
) -> Proposal:
    """Ratio group, train size and the run fields around a dataset section."""
    if ds is not None:
        pool_y, pool_g = ds.pool.y, ds.pool.g
        groups, classes = list(ds.groups), list(ds.classes)
        test = Counts.of(ds.test.y, ds.test.g, groups, classes)
    else:
        assert pool_parts is not None and test is not None
        pool_y, pool_g = pool_parts
        groups, classes = list(test.groups), list(test.classes)  # after dropping or merging
    pool = Counts.of(pool_y, pool_g, groups, classes)
    counts = counts.in_class_order(classes)
    rg, rg_why = pick_ratio_group(pool, requested_rg, merged=dataset.get("min_group_size", 0) > 0,
                                  group_values=group_values, attribute=(attributes or [""])[0])
    moved = moved_indices(rg, groups, group_values or [])
    cpu_images = kind == "images"
    ratios = CPU_RATIOS if kind in ("images", "text") else RATIOS
    size = propose_train_size(pool_y, pool_g, groups, len(classes), moved, ratios)
    image = kind in ("celeba", "chexpert", "images")
    rg_rows = int(sum(pool.n[i].sum() for i in moved))
    others = int(pool.n.sum()) - rg_rows
    size_why = (
        f"the largest size every ratio from 0 to 1 can draw (label_balance keep): at ratio 1 all "
        f"of it comes from {rg!r} ({rg_rows:,} pool rows), at ratio 0 from the other "
        f"groups ({others:,}). Largest: {size.largest:,}"
        + (f", rounded down to {size.value:,}" if size.value != size.largest else "")
        + f", so {size.value + size.step:,} cannot be drawn. Any smaller size can"
    )
    if size.value >= rg_rows * 0.9 and not image:
        size_why += (f"; at ratio 1 a draw takes {size.value / rg_rows:.0%} of "
                     f"the pool of {rg!r}, so replicates there share most of their rows")
    train_size = size.value
    cap = {"images": CPU_TRAIN_MAX, "text": CPU_TEXT_MAX}.get(kind)
    if cap is not None and train_size > cap:
        train_size = cap
        size_why += (f"; capped at {cap:,} so the sweep runs on a CPU in minutes"
                     + (" (raise it on a GPU)" if cpu_images else ""))
    comments["ratio_group"] = f"the group whose share is swept; {rg_why}"
    comments["train_size"] = size_why
    notes.append(f"ratio group {rg_why}")
    notes.append(f"train size {train_size:,}: largest drawable at every ratio 0..1 is "
                 f"{size.largest:,} (limited by {rg!r} at ratio 1)"
                 if rg_rows <= others else
                 f"train size {train_size:,}: largest drawable at every ratio 0..1 is "
                 f"{size.largest:,} (limited by the other groups at ratio 0)")
    low_test = [f"{g}/{c} ({test.n[i, j]})" for i, g in enumerate(test.groups)
                for j, c in enumerate(test.classes) if test.n[i, j] < MIN_TEST_PER_CLASS]
    if low_test:
        notes.append(f"warning: few test rows for group/class {', '.join(low_test)}: per-group "
                     f"metrics there are noisy")
    if train_size < 100:
        notes.append(f"warning: train size {train_size} is small; the pool of {rg!r} limits it")

    config: dict[str, Any] = {"name": name, "seed": 0, "dataset": dataset, "ratio_group": rg,
                              "ratios": list(ratios), "train_size": train_size,
                              "label_balance": "keep"}
    if cpu_images:
        fields, why = _cpu_image_fields(train_size, len(ratios), dataset["image_size"])
    elif image:
        fields, why = _gpu_fields(kind)
    elif kind == "text":
        fields, why = _text_fields(train_size)
    else:
        fields, why = _mlp_fields(train_size)
    config.update(fields)
    comments.update(why)
    step = ratios[1] - ratios[0]
    comments["ratios"] = f"share of ratio_group in each training set: 0 to 1 in steps of {step:g}"
    comments["label_balance"] = "keep: each group's draw keeps that group's label prevalence"
    members = config["ensemble"]["members"]
    ks = [k for k in (1, 2, 3, 5, 10, 20) if k <= members]
    comments["ensemble"] = (f"{members} members per cell; ensembles of k = "
                            f"{', '.join(map(str, ks))} of them are scored (k follows members); "
                            "every registered metric is computed")
    comments["test_mix"] = "overall metrics weight every group equally"
    gpu_try = kind in ("celeba", "chexpert")
    cpu_size = _cpu_train_size(pool_y, pool_g, groups, len(classes), moved) if gpu_try else None
    validate(config)
    return Proposal(config=config, comments=comments, counts=counts, pool=pool, test=test,
                    notes=notes, facts=facts, train_size=size, image=gpu_try,
                    cpu_train_size=cpu_size)


def _mlp_fields(train_size: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of a table config (a stacked MLP on the CPU), and why."""
    epochs = mlp_epochs(train_size, 128)
    steps = epochs * math.ceil(train_size / 128)
    fields = {
        "replicates": 3,
        "model": {"name": "mlp", "hidden": [64, 64], "activation": "relu"},
        "train": {"optimizer": "adam", "lr": 0.001, "epochs": epochs, "batch_size": 128},
        "ensemble": {"members": 20, "draws": 50},
        "primary_metric": "balanced_accuracy",
        "test_mix": "balanced",
        "executor": {"kind": "local", "workers": 2},
    }
    why = {
        "replicates": "3 training draws per ratio, for intervals over replicates",
        "model": "a small MLP; all 20 members of a cell train as one stacked program",
        "train": f"{epochs} epochs at batch 128: {steps:,} optimizer steps per member (aiming at "
                 f"about {TARGET_STEPS:,}, within {EPOCHS_RANGE[0]}-{EPOCHS_RANGE[1]} epochs)",
        "primary_metric": "balanced accuracy: not flattered by a common class",
    }
    return fields, why


def _text_fields(train_size: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of a text config (stacked hashed n-gram bags on the CPU), and why."""
    epochs = int(np.clip(round(TEXT_STEPS / math.ceil(train_size / 32)), *TEXT_EPOCHS))
    fields = {
        "replicates": 3,
        "model": {"name": "bag", "width": 32, "head_hidden": []},
        "train": {"optimizer": "adam", "lr": 0.01, "epochs": epochs, "batch_size": 32},
        "ensemble": {"members": 10, "draws": 50},
        "primary_metric": "balanced_accuracy",
        "test_mix": "balanced",
        "executor": {"kind": "local", "workers": 2},
    }
    why = {
        "replicates": "3 training draws per ratio, for intervals over replicates",
        "model": "hashed word and character n-gram bags (fastText-style: an embedding bag of "
                 "width 32 and a linear head); all members of a unit train as one stack",
        "train": f"{epochs} epochs at batch 32, Adam (sparse on the embedding) at 0.01",
        "primary_metric": "balanced accuracy: not flattered by a common class",
    }
    return fields, why


def _gpu_fields(kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of an image config (ResNet-50 on a GPU), read from the shipped config of
    the same kind (CheXpert's for CheXpert, CelebA's for the others), and why."""
    shipped = shipped_config("chexpert" if kind == "chexpert" else "celeba")
    fields = {key: shipped[key] for key in ("replicates", "model", "train", "ensemble",
                                            "primary_metric", "test_mix", "executor")}
    why = {
        "replicates": "1: each replicate repeats every GPU training",
        "model": "ResNet-50 at 224 px: a GPU is expected (20 members x 11 ratios; see the README "
                 "for the cost). Try it on a CPU first with the command in the header",
        "train": "SGD, cosine schedule, early stopping on the val split: the setup of the shipped"
                 " configs/celeba.yaml and configs/chexpert.yaml",
        "executor": "one process drives the GPU",
    }
    return fields, why


def _cpu_image_fields(train_size: int, n_mixes: int, image_size: int
                      ) -> tuple[dict[str, Any], dict[str, str]]:
    """The run fields of `init images`: a sweep that runs on a 2-core CPU in minutes, and the
    GPU alternative as a comment."""
    per_epoch = n_mixes * CPU_MEMBERS * train_size
    epochs = min(max(round(CPU_IMAGES / per_epoch), CPU_EPOCHS[0]), CPU_EPOCHS[1])
    fields = {
        "replicates": 1,
        "model": {"name": "cnn", "width": 16},
        "train": {"optimizer": "adam", "lr": 0.002, "epochs": epochs, "batch_size": 64,
                  "device": "auto"},
        "ensemble": {"members": CPU_MEMBERS, "draws": 20},
        "primary_metric": "balanced_accuracy",
        "test_mix": "balanced",
        "executor": {"kind": "local", "workers": 2},
    }
    why = {
        "replicates": "1 replicate: intervals come from a bootstrap over test samples instead",
        "model": (f"a small CNN (16 base channels) on {image_size} px images: {n_mixes} mixes "
                  f"x {CPU_MEMBERS} members train on a 2-core CPU in minutes. On a GPU, the "
                  "paper's setup: --set model.name=resnet50 --set dataset.image_size=224 --set "
                  "ensemble.members=20 --set train.epochs=20 --set "
                  "'ratios=[0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1]' (with model.weights=FILE "
                  "for ImageNet weights, and model.freeze=backbone to train heads over frozen "
                  "features in seconds)"),
        "train": (f"{epochs} epochs at batch 64: about {epochs * per_epoch:,} training images in "
                  f"all, aiming at {CPU_IMAGES:,} (within {CPU_EPOCHS[0]}-{CPU_EPOCHS[1]} epochs)"),
        "primary_metric": "balanced accuracy: not flattered by a common class",
        "analysis": "one replicate: 95 % intervals from a bootstrap over test samples",
    }
    fields["analysis"] = {"ci": "bootstrap"}
    return fields, why


def _cpu_train_size(pool_y: np.ndarray, pool_g: np.ndarray, groups: list[str], n_classes: int,
                    moved: list[int]) -> int:
    """The train size for the CPU try (pool capped at ``CPU_POOL``): the capped pool's counts
    per group x class do not depend on the subsample's seed, so any seed gives them."""
    keep = stratified_subsample(pool_y, pool_g, CPU_POOL, np.random.default_rng(0))
    return propose_train_size(pool_y[keep], pool_g[keep], groups, n_classes, moved,
                              RATIOS).value


def _all_counts(ds: Any) -> Counts:
    splits = [s for s in (ds.pool, ds.val, ds.test) if s is not None]
    y = np.concatenate([s.y for s in splits])
    g = np.concatenate([s.g for s in splits])
    return Counts.of(y, g, list(ds.groups), list(ds.classes))


def _data_seed() -> int:
    """The seed ``fairensemble run`` splits the data with for a config with ``seed: 0``."""
    from fairensemble.sweep.runner import data_seed

    return data_seed(RunConfig(seed=0))


