"""Specifications of images that do not decode: every one is listed in one pass (count, first
names, the full list in a file the line names) instead of the first only; with
`dataset.skip_unreadable` they are left out of the split they were drawn into, with a warning
per group, and a second run decodes nothing."""

from __future__ import annotations

import csv
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import break_image, grey_level, make_celeba, make_image_tree, tiny_image
from conftest import cli

from fairensemble import DataError
from fairensemble.common.errors import DataWarning
from fairensemble.config import load_config
from fairensemble.data import celeba, decode
from fairensemble.data.celeba import CelebAData
from fairensemble.data.images import ImagesData, layout_rows, load
from fairensemble.data.reader import read_table

N = 64
BROKEN = {3: "truncated", 10: "text", 17: "empty", 40: "truncated"}  # image k -> damage


def make_table_of_images(folder: Path) -> Path:
    """``N`` images ``img_<k>.jpg`` (grey level ``grey_level(k)``) and ``index.csv``: label
    k % 2, group a / b by (k // 2) % 2 (so every group x label pair has N / 4 images)."""
    rows = []
    for k in range(N):
        tiny_image(folder / f"img_{k:03d}.jpg", grey_level(k))
        rows.append({"file": f"img_{k:03d}.jpg", "label": k % 2, "grp": "ab"[(k // 2) % 2]})
    pd.DataFrame(rows).to_csv(folder / "index.csv", index=False)
    return folder / "index.csv"


@pytest.fixture
def broken(tmp_path) -> Path:
    """The table of images with the images in ``BROKEN`` damaged (a truncated JPEG, a text
    file and an empty file under an image's name)."""
    table = make_table_of_images(tmp_path / "imgs")
    for k, how in BROKEN.items():
        break_image(tmp_path / "imgs" / f"img_{k:03d}.jpg", how)
    return table


def cfg_of(table: Path, cache: Path, **kw) -> ImagesData:
    return ImagesData(**{"path": str(table), "image": "file", "target": "label", "group": "grp",
                         "image_size": 8, "cache_dir": str(cache), **kw})


def count_decodes(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = decode.decode_image

    def counting(path, *args, **kwargs):
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode, "decode_image", counting)
    return seen


def broken_names() -> list[str]:
    return [f"img_{k:03d}.jpg" for k in sorted(BROKEN)]


@pytest.mark.parametrize("workers", [0, 2])
def test_every_unreadable_image_is_counted_named_and_listed_in_a_file(broken, tmp_path,
                                                                      workers):
    with pytest.raises(DataError) as err:
        load(cfg_of(broken, tmp_path / "c", num_workers=workers), seed=0)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"{broken}: 4 of {N} images cannot be decoded: img_003.jpg: "
                           "unreadable image (")
    assert "img_010.jpg: unreadable image (" in line and "; and 1 more;" in line
    assert line.endswith("; repair or remove them, or set dataset.skip_unreadable: true to "
                         "leave them out")
    listed = Path(line.split("all listed in ")[1].split(";")[0])
    assert listed.parent == tmp_path / "c" and listed.name.endswith(".unreadable.csv")
    with listed.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["image"] for r in rows] == broken_names()
    assert [r["file"] for r in rows] == [str(broken.parent / n) for n in broken_names()]
    assert all(r["why"] for r in rows)
    assert list((tmp_path / "c").glob("*.npy*")) == []  # nothing half-usable cached


def test_the_list_file_name_is_the_same_for_the_same_config_and_files(broken, tmp_path):
    lines = []
    for _ in range(2):
        with pytest.raises(DataError) as err:
            load(cfg_of(broken, tmp_path / "c"), seed=0)
        lines.append(str(err.value))
    assert lines[0] == lines[1]


def test_skip_unreadable_leaves_them_out_of_their_own_split_and_warns_per_group(
        broken, tmp_path, monkeypatch):
    cfg = cfg_of(broken, tmp_path / "c", skip_unreadable=True)
    seen = count_decodes(monkeypatch)
    with pytest.warns(DataWarning) as caught:
        ds = load(cfg, seed=0)
    [line] = [str(w.message) for w in caught]
    # image k is group a when (k // 2) is even: 3 -> b, 10 -> b, 17 -> a, 40 -> a
    assert line.startswith(f"{broken}: 4 of {N} images cannot be decoded and are left out "
                           "(dataset.skip_unreadable), by group: 'a' 2, 'b' 2; listed in ")
    assert len(seen) == N  # one pass over every used image

    # every other image stays in the split it is in with all images readable
    rows = layout_rows(read_table(broken), cfg, seed=0, source="t")
    for name, split in (("pool", ds.pool), ("val", ds.val), ("test", ds.test)):
        if split is None:
            continue
        expected = [k for k in rows.rows[rows.parts[name]] if k not in BROKEN]
        levels = np.asarray(split.X).reshape(len(split), -1).mean(1)
        assert np.abs(levels - [grey_level(k) for k in expected]).max() < 3
        assert split.y.tolist() == [k % 2 for k in expected]
    assert ds.info["unreadable"]["count"] == 4
    assert ds.info["unreadable"]["by_group"] == {"a": 2, "b": 2}

    # a second load decodes nothing and gives the same rows, with the same warning
    with pytest.warns(DataWarning) as again:
        second = load(cfg, seed=0)
    assert len(seen) == N
    assert [str(w.message) for w in again] == [line]
    assert np.array_equal(np.asarray(second.test.X), np.asarray(ds.test.X))
    assert np.array_equal(second.pool.y, ds.pool.y)
    # and the run that does not skip them reads the same cache: stopped, nothing decoded
    with pytest.raises(DataError, match="4 of 64 images cannot be decoded"):
        load(cfg.model_copy(update={"skip_unreadable": False}), seed=0)
    assert len(seen) == N


def test_a_repaired_image_returns_to_its_own_split(broken, tmp_path):
    cfg = cfg_of(broken, tmp_path / "c", skip_unreadable=True)
    with pytest.warns(DataWarning):
        before = load(cfg, seed=0)
    tiny_image(broken.parent / "img_040.jpg", grey_level(40))
    with pytest.warns(DataWarning, match="3 of 64 images"):
        after = load(cfg, seed=0)
    rows = layout_rows(read_table(broken), cfg, seed=0, source="t")
    split = next(n for n, idx in rows.parts.items() if 40 in rows.rows[idx])
    grown = {"pool": len(after.pool) - len(before.pool),
             "test": len(after.test) - len(before.test)}
    grown["val"] = len(after.val or []) - len(before.val or [])
    assert grown == {s: int(s == split) for s in ("pool", "val", "test")}


def test_a_group_left_without_test_images_says_why(tmp_path):
    table = make_table_of_images(tmp_path / "imgs")
    cfg = cfg_of(table, tmp_path / "c", skip_unreadable=True)
    rows = layout_rows(read_table(table), cfg, seed=0, source="t")
    test_b = [k for k in rows.rows[rows.parts["test"]] if "ab"[(k // 2) % 2] == "b"]
    for k in test_b:
        break_image(tmp_path / "imgs" / f"img_{k:03d}.jpg", "text")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError) as err:
            load(cfg, seed=0)
    assert str(err.value) == (
        f"{table}: group 'b' has no images left in the test split once its {len(test_b)} "
        f"unreadable ones there are left out (dataset.skip_unreadable; listed in "
        f"{str(err.value).split('listed in ')[1]}")
    assert "unreadable.csv)" in str(err.value)


def test_no_readable_image_at_all_is_one_line(tmp_path):
    table = make_table_of_images(tmp_path / "imgs")
    for k in range(N):
        break_image(tmp_path / "imgs" / f"img_{k:03d}.jpg", "empty")
    with pytest.raises(DataError, match=rf"none of the {N} images can be decoded: "):
        load(cfg_of(table, tmp_path / "c", skip_unreadable=True), seed=0)


def test_celeba_leaves_unreadable_images_out_too(tmp_path):
    root = make_celeba(tmp_path / "celeba", n=48)
    for name in ("000002.jpg", "000005.jpg"):
        break_image(root / "img_align_celeba" / name, "truncated")
    cfg = CelebAData(root=str(root), image_size=8, cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=r"2 of 48 images cannot be decoded: 000002.jpg: "):
        celeba.load(cfg, seed=0)
    # image i is male when (i // 3) is odd: 000002.jpg (i = 1) female, 000005.jpg (4) male
    with pytest.warns(DataWarning, match=r"2 of 48 images .* left out .* by group: 'female' 1, "
                                         r"'male' 1; listed in "):
        ds = celeba.load(cfg.model_copy(update={"skip_unreadable": True}), seed=0)
    assert len(ds.pool) + len(ds.val) + len(ds.test) == 46


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def broken_tree(tmp_path) -> Path:
    """An image tree <label>/<sex>/img_<k>.png with three damaged images (a truncated PNG, a
    text file named .png, a truncated JPEG) in group f."""
    folder = make_image_tree(tmp_path / "pets", per_leaf=16)
    break_image(folder / "cat" / "f" / "img_0003.png", "truncated")
    break_image(folder / "dog" / "f" / "img_0035.png", "text")
    shutil.copy(folder / "cat" / "f" / "img_0004.png", folder / "cat" / "f" / "img_0004b.png")
    tiny_image(folder / "cat" / "f" / "x.jpg", 50)
    break_image(folder / "cat" / "f" / "x.jpg", "truncated")
    return folder


def test_run_lists_every_unreadable_image_in_one_line(broken_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRENSEMBLE_CACHE", str(tmp_path / "cache"))
    init = cli("init", "images", str(broken_tree), "--layout", "{label}/{sex}/*", "--target",
               "label", "--group", "sex", "--out", str(tmp_path / "p.yaml"))
    assert init.returncode == 0, init.stderr
    assert "could not be opened; `run` decodes every image first" in " ".join(init.stdout.split())
    res = cli("run", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "run"))
    assert res.returncode == 2
    [line] = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert "3 of 66 images cannot be decoded: cat/f/img_0003.png: unreadable image (" in line
    assert "cat/f/x.jpg: unreadable image (" in line and "dog/f/img_0035.png" in line
    assert f"all listed in {tmp_path / 'cache'}" in line
    assert not (tmp_path / "run" / "cells").exists()


def test_init_with_skip_unreadable_then_run_leaves_them_out_and_finishes(broken_tree, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("FAIRENSEMBLE_CACHE", str(tmp_path / "cache"))
    seen = count_decodes(monkeypatch)
    init = cli("init", "images", str(broken_tree), "--layout", "{label}/{sex}/*", "--target",
               "label", "--group", "sex", "--skip-unreadable", "--out", str(tmp_path / "p.yaml"))
    assert init.returncode == 0, init.stderr
    out = " ".join(init.stdout.split())
    # groups without any are not listed
    assert "3 of 66 images cannot be decoded and are left out (dataset.skip_unreadable), by " \
           "group: 'f' 3; listed in " in out
    cfg = load_config(tmp_path / "p.yaml")
    assert cfg.dataset.skip_unreadable is True
    decoded_at_init = len(seen)
    assert decoded_at_init == 66
    res = cli("run", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "run"),
              "--set", "ratios=[0.0, 1.0]", "--set", "ensemble.members=2",
              "--set", "ensemble.k=[1, 2]", "--set", "train.epochs=1",
              "--set", "executor.kind=serial", "--set", "executor.threads=1",
              "--set", "model.width=4", "--set", "analysis.n_boot=20")
    assert res.returncode == 0, res.stderr
    warned = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "by group: 'f' 3; listed in " in warned[0]
    assert len(seen) == decoded_at_init  # run read what init decoded
    assert (tmp_path / "run" / "metrics.parquet").is_file()


def test_a_pool_too_small_once_they_are_out_says_why(broken, tmp_path):
    from fairensemble.sweep.runner import plan_run

    data = cfg_of(broken, tmp_path / "c", skip_unreadable=True).model_dump(mode="json")
    cfg = load_config(None, [f"dataset={json.dumps(data)}", "ratio_group=a", "train_size=30",
                             "ratios=[1.0]"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataError) as err:
            plan_run(cfg)
    line = str(err.value)
    assert "train_size 30 with share 1 of group 'a'" in line
    assert re.search(r"; the pool is short of the \d unreadable images? left out of it "
                     r"\(dataset.skip_unreadable\), by group: 'a' \d.*; lower train_size or "
                     r"repair them \(listed in .*\.unreadable\.csv\)$", line), line
