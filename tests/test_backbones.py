"""Specifications of any backbone: a user's factory named `file.py:function` or
`module:function`, frozen-feature ensembles (`model.freeze: backbone`), and bf16 precision."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import cli, run_cli

from fairensemble import models
from fairensemble.config import ModelConfig, TrainConfig, load_config
from fairensemble.train import CellData, Inputs, train_loop
from fairensemble.train.common import channels_last

FACTORY = '''
import os

import torch
from torch import nn


class Net(nn.Module):
    """A tiny conv net whose backbone counts the images it sees (into $COUNT_FILE)."""

    head_name = "classifier"

    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        path = os.environ.get("COUNT_FILE")
        if path and not self.training:
            with open(path, "a") as fh:
                fh.write(f"{len(x)}\\n")
        return self.classifier(self.body(x))


def tiny(num_classes, in_channels=3):
    return Net(num_classes, in_channels)


def not_a_module(num_classes):
    return "resnet"


def wrong_width(num_classes):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes + 1))


def broken(num_classes):
    raise RuntimeError("weights server unreachable")
'''

DIGITS = {"name": "digits-factory", "dataset": {"kind": "digits"}, "train_size": 200,
          "ratios": [0.0, 0.5, 1.0], "replicates": 1,
          "train": {"epochs": 2, "batch_size": 32}, "ensemble": {"members": 2},
          "executor": {"kind": "serial"}, "analysis": {"post": []}}


@pytest.fixture
def factory(tmp_path) -> Path:
    path = tmp_path / "my_nets.py"
    path.write_text(textwrap.dedent(FACTORY))
    return path


@pytest.fixture
def digits_cfg(tmp_path) -> str:
    path = tmp_path / "digits.yaml"
    path.write_text(yaml.safe_dump(DIGITS))
    return str(path)


def test_a_factory_file_trains_end_to_end(factory, digits_cfg, tmp_path):
    res = run_cli("run", digits_cfg, "--out", str(tmp_path / "run"), "--set",
                  f"model.name={factory}:tiny")
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"A", "B"} <= set(table["group"]) and table["mean"].notna().any()


@pytest.mark.parametrize("function, expected", [
    ("missing", "has no function 'missing'"),
    ("not_a_module", "returned a str, expected an nn.Module"),
    ("wrong_width", r"returns \(2, 3\) for 2 inputs, expected \(2, 2\): one column per class"),
    ("broken", "failed when called with num_classes=2: RuntimeError: weights server "
               "unreachable"),
])
def test_a_bad_factory_stops_with_one_line_naming_model_name(factory, digits_cfg, tmp_path,
                                                             function, expected):
    res = cli("run", digits_cfg, "--out", str(tmp_path / "run"), "--set",
              f"model.name={factory}:{function}")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.name: ")
    assert pd.Series(lines).str.contains(expected).all(), lines[0]
    assert not (tmp_path / "run" / "cells").exists() or not any(
        (tmp_path / "run" / "cells").glob("*.npz"))


def test_a_factory_that_cannot_be_found_or_imported_is_one_line(digits_cfg, tmp_path):
    bad = tmp_path / "syntax.py"
    bad.write_text("def f(num_classes:\n")
    for name, expected in ((f"{tmp_path}/absent.py:f", "absent.py: no such file"),
                           (f"{bad}:f", "cannot be imported: SyntaxError"),
                           ("no_such_package.nets:f", "module 'no_such_package.nets' cannot be"
                                                      " imported: ModuleNotFoundError")):
        res = cli("run", digits_cfg, "--out", str(tmp_path / "run"), "--set",
                  f"model.name={name}")
        assert res.returncode == 2 and expected in res.stderr, res.stderr
    res = cli("demo", "--set", "model.name=resnet 50")
    assert res.returncode == 2 and "expected one of" in res.stderr and "factory" in res.stderr


def test_a_module_path_factory_is_imported_like_a_package(factory, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(factory.parent))
    net = models.create("my_nets:tiny", 3, in_channels=1)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    assert models.factory_file("my_nets:tiny") == factory


def test_frozen_backbone_runs_once_per_image_and_twenty_heads_train_per_cell(
        factory, digits_cfg, tmp_path):
    counts = tmp_path / "forwards.txt"
    args = ["run", digits_cfg, "--out", str(tmp_path / "run"), "--set",
            f"model.name={factory}:tiny", "--set", "model.freeze=backbone",
            "--set", "ensemble.members=20", "--set", "train.epochs=20",
            "--set", "executor.kind=local", "--set", "executor.workers=2",
            "--set", "train.diversity=[init,order,bootstrap]"]
    env = {"COUNT_FILE": str(counts), "FAIRENSEMBLE_CACHE": str(tmp_path / "cache")}
    res = run_cli(*args, env=env)
    assert res.returncode == 0, res.stderr
    seen = sum(int(n) for n in counts.read_text().split())
    assert seen == 1797  # every digit image once, in the driver; the workers read the cache
    cells = list((tmp_path / "run" / "cells").glob("*.npz"))
    assert len(cells) == 3
    with np.load(cells[0], allow_pickle=False) as z:
        assert z["probs_test"].shape[0] == 20  # twenty heads
        assert np.abs(z["probs_test"][0] - z["probs_test"][1]).max() > 1e-4
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    acc = table[(table["metric"] == "accuracy") & (table["group"] == "overall")
                & (table["k"] == 20)]["mean"]
    assert acc.min() > 0.6  # heads on random conv features still learn the task
    # a second run (nothing left to train) does not run the backbone again
    res = run_cli(*args, "--set", "ensemble.k=[1,2,20]", env=env)
    assert res.returncode == 0, res.stderr
    assert sum(int(n) for n in counts.read_text().split()) == 1797


def test_freeze_needs_an_image_model():
    res = cli("demo", "--set", "model.freeze=backbone")
    assert res.returncode == 2
    assert "model.freeze: 'backbone' freezes an image model's backbone" in res.stderr


def test_bf16_trains_on_the_cpu_and_stays_close_to_fp32():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (40, 3, 16, 16)).astype(np.uint8)
    y = (X[:, 0].mean(axis=(1, 2)) > 127).astype(np.int64)
    cell = CellData(X, y, {"test": X[:10]}, [1], inputs=Inputs(kind="image"))
    model = ModelConfig(name="cnn", width=4)
    fp32 = train_loop([cell], model, TrainConfig(epochs=2, batch_size=8), 2)[0]["test"]
    bf16 = train_loop([cell], model, TrainConfig(epochs=2, batch_size=8, precision="bf16"),
                      2)[0]["test"]
    assert bf16.dtype == np.float32 and np.allclose(bf16.sum(axis=2), 1.0, atol=1e-5)
    assert not np.array_equal(fp32, bf16)  # bf16 arithmetic happened
    assert np.abs(fp32 - bf16).max() < 0.1  # and it is the same model, nearly


def test_convolutional_nets_run_channels_last_under_bf16_or_on_cuda_only():
    cnn, mlp = models.create("cnn", 2, width=4), models.create("mlp", 2, in_features=3)
    cpu = torch.device("cpu")
    assert channels_last(cnn, cpu, "bf16") and not channels_last(cnn, cpu, "fp32")
    assert channels_last(cnn, torch.device("cuda"), "fp32")  # the policy, not a device
    assert not channels_last(mlp, cpu, "bf16")


def test_precision_is_validated_in_the_config():
    with pytest.raises(Exception, match="train.precision"):
        load_config(None, ["train.precision=fp16"])
