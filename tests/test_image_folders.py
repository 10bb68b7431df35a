"""Specifications of `init images FOLDER --layout PATTERN`: a folder of images without a table
(UTKFace file names, an ImageFolder tree) becomes a table beside the config, which `run` reads
unedited; names that do not fit are listed, never guessed; wrong flags are one line."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from builders import UTK_MISFITS, grey_level, make_image_tree, make_utkface, tiny_image
from conftest import cli, run_cli

from fairensemble import ConfigError
from fairensemble.config import load_config
from fairensemble.data.folders import parse_layout, table_bytes
from fairensemble.data.images import load
from fairensemble.data.reader import read_table

# CPU-sized run settings: 2 cells of 2 small-CNN members, one epoch, in this process
SMALL = {"ratios": "[0.0, 1.0]", "ensemble.members": "2", "ensemble.k": "[1, 2]",
         "ensemble.draws": "2", "train.epochs": "1", "train.batch_size": "16",
         "model.width": "4", "executor.kind": "serial", "executor.workers": "1",
         "executor.threads": "1", "analysis.n_boot": "20"}


def small(**extra: str) -> list[str]:
    return [a for k, v in {**SMALL, **extra}.items() for a in ("--set", f"{k}={v}")]


def one_line(res) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FAIRENSEMBLE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ----------------------------------------------------------------------------- the pattern


@pytest.mark.parametrize("pattern, path, fields", [
    ("{age}_{gender}_{race}_*", "25_0_2_20170116174525125.jpg",
     {"age": "25", "gender": "0", "race": "2"}),
    ("{age}_{gender}_{race}_*", "25_0_2_.jpg", {"age": "25", "gender": "0", "race": "2"}),
    ("{label}/*", "cat/a.png", {"label": "cat"}),
    ("{label}/*", "cat/sub/deeper/a.PNG", {"label": "cat"}),  # ImageFolder: any depth
    ("{race}/{gender}/*", "Black/Female/x_1.jpg", {"race": "Black", "gender": "Female"}),
    ("{split}/{label}/img-*", "train/cat/img-7.jpg", {"split": "train", "label": "cat"}),
    ("{label}/*.png", "dog/b.png", {"label": "dog"}),
    ("{id}-{view}", "P01-frontal.jpeg", {"id": "P01", "view": "frontal"}),
])
def test_a_layout_names_the_parts_of_each_path(pattern, path, fields):
    assert parse_layout(pattern).match(path) == fields


@pytest.mark.parametrize("pattern, path, why", [
    ("{age}_{gender}_{race}_*", "61_1_20170109150557335.jpg",
     "3 parts between '_', the layout has at least 4"),  # a field missing
    ("{age}_{gender}_{race}_*", "39_1__20170116174525125.jpg", "an empty field"),
    ("{age}_{gender}_{race}_*", "more/25_0_2_x.jpg", "2 path levels, the layout has 1"),
    ("{label}/*", "stray.jpg", "1 path level, the layout has at least 2"),
    ("{id}-{view}", "P01-frontal-2.jpg", "3 parts between '-', the layout has 2"),  # never split
    ("{label}/*.png", "dog/b.jpg", "extension .jpg, the layout takes .png"),
    ("{split}/{label}/img-*", "train/cat/photo.jpg", "1 part between '-', the layout has at "
                                                     "least 2"),
])
def test_a_name_that_does_not_fit_is_not_guessed_and_says_why(pattern, path, why):
    layout = parse_layout(pattern)
    assert layout.match(path) is None
    assert layout.why_not(path) == why


@pytest.mark.parametrize("pattern, expected", [
    ("", "expected a pattern naming the parts"),
    ("label/*", "expected at least one {field}"),
    ("{a}{b}_*", "two fields, or a field and '*', need a literal"),
    ("{label}*", "two fields, or a field and '*', need a literal"),
    ("{a}/{a}_*", "field 'a' appears twice"),
    ("{1st}/*", "field names are letters, digits and _"),
    ("{label/*", "a '{' without its '}'"),
    ("/data/{label}/*", "no leading '/'"),
    ("{label}//*", "an empty folder level"),
])
def test_a_malformed_layout_is_one_line_naming_the_option(pattern, expected):
    with pytest.raises(ConfigError, match=r"^--layout: ") as err:
        parse_layout(pattern)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_the_table_is_csv_unless_csv_would_change_a_value():
    plain = pd.DataFrame({"image": ["a/1.png", "b, c/2.png"], "label": ["cat", "dog"],
                          "age": ["25", "3"]}, dtype=object)
    assert table_bytes(plain)[0] == ".csv"
    # a leading zero, a word that means missing in CSV, a float's zero
    for values in (["007", "008"], ["NA", "EU"], ["1.0", "2"]):
        suffix, data = table_bytes(plain.assign(label=values))
        assert suffix == ".parquet"
        assert pd.read_parquet(io.BytesIO(data))["label"].tolist() == values


# ----------------------------------------------------------------------------- init -> run


def test_utkface_file_names_go_from_init_to_a_run_unedited(tmp_path, cache):
    folder = make_utkface(tmp_path / "UTKFace", n=72)
    config = tmp_path / "utk.yaml"
    res = cli("init", "images", str(folder), "--layout", "{age}_{gender}_{race}_*",
              "--target", "gender", "--group", "race", "--out", str(config))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "74 images; 72 fit --layout '{age}_{gender}_{race}_*'" in out
    assert "2 do not" in out and "'61_1_20170109150557335.jpg' (3 parts between '_'" in out
    assert "skipped 2 hidden" in out  # .DS_Store and the ._ file: never read, never listed

    table_file = tmp_path / "utk.images.csv"  # beside the config, named after it
    table = pd.read_csv(table_file, dtype=str)
    assert list(table.columns) == ["image", "age", "gender", "race"] and len(table) == 72
    first = table.iloc[0]
    assert first["image"].startswith(f"{first['age']}_{first['gender']}_{first['race']}_")
    unfit = (tmp_path / "utk.unmatched.txt").read_text().splitlines()
    assert [ln.split("\t") for ln in unfit[1:]] == sorted([k, v] for k, v in UTK_MISFITS.items())

    cfg = load_config(config)
    assert (cfg.dataset.kind, cfg.dataset.path, cfg.dataset.image) == (
        "images", str(table_file), "image")
    assert cfg.dataset.roots == [str(folder)] and cfg.dataset.group == "race"
    # run reads the table, never the folder: an image added since changes nothing
    tiny_image(folder / "30_1_1_20990101000000000.jpg", 200)
    res = cli("run", str(config), "--out", str(tmp_path / "run"), *small())
    assert res.returncode == 0, res.stderr
    metrics = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"0", "1", "2"} <= set(metrics["group"])
    ds = load(cfg.dataset, seed=0)
    assert ds.info["rows_read"] == 72


def test_an_image_folder_tree_goes_from_init_to_a_run_unedited(tmp_path, cache):
    folder = make_image_tree(tmp_path / "pets", per_leaf=12)
    (folder / "cat" / "f" / "more").mkdir()  # ImageFolder takes deeper folders too
    tiny_image(folder / "cat" / "f" / "more" / "img_extra.png", 90)
    config = tmp_path / "pets.yaml"
    res = cli("init", "images", str(folder), "--layout", "{label}/{sex}/*", "--target", "label",
              "--group", "sex", "--positive", "dog", "--out", str(config))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "49 images; 49 fit" in out and "0 do not" in out
    assert "skipped 1 other file (e.g. 'README.txt') and 1 hidden" in out
    assert not (tmp_path / "pets.unmatched.txt").exists()  # nothing to list
    table = pd.read_csv(tmp_path / "pets.images.csv", dtype=str)
    assert "cat/f/more/img_extra.png" in set(table["image"])
    assert set(table["label"]) == {"cat", "dog"} and set(table["sex"]) == {"f", "m"}
    cfg = load_config(config)
    assert cfg.dataset.positive == "dog" and cfg.dataset.image_size == 8
    res = cli("run", str(config), "--out", str(tmp_path / "run"), *small())
    assert res.returncode == 0, res.stderr
    assert set(pd.read_parquet(tmp_path / "run" / "metrics.parquet")["group"]) >= {"f", "m"}
    ds = load(cfg.dataset, seed=0)  # every row is the image its path names
    all_x = np.concatenate([np.asarray(s.X) for s in (ds.pool, ds.val, ds.test) if s])
    levels = sorted(int(round(x.mean())) for x in all_x)
    assert levels == sorted([grey_level(k) for k in range(48)] + [90])


def test_a_split_field_fixes_the_splits(tmp_path, cache):
    folder = tmp_path / "ds"
    for k in range(48):
        split = "train" if k % 3 else "test"
        tiny_image(folder / split / f"{'cat' if k % 2 else 'dog'}_{'f' if k % 4 < 2 else 'm'}"
                   f"_{k}.png", grey_level(k))
    config = tmp_path / "s.yaml"
    res = cli("init", "images", str(folder), "--layout", "{split}/{label}_{sex}_*",
              "--target", "label", "--group", "sex", "--split", "split", "--out", str(config))
    assert res.returncode == 0, res.stderr
    cfg = load_config(config)
    assert cfg.dataset.split == "split"
    ds = load(cfg.dataset, seed=0)
    assert len(ds.test) == 16 and len(ds.pool) + (len(ds.val) if ds.val else 0) == 32


def test_values_csv_would_change_keep_their_spelling(tmp_path, cache):
    folder = tmp_path / "odd"
    for k in range(40):
        tiny_image(folder / ("NA" if k % 2 else "EU") / ("007" if k % 4 < 2 else "008")
                   / f"{k}.png", grey_level(k))
    res = cli("init", "images", str(folder), "--layout", "{region}/{agent}/*", "--target",
              "agent", "--group", "region", "--out", str(tmp_path / "o.yaml"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o.images.parquet").is_file() and not (tmp_path / "o.images.csv").exists()
    cfg = load_config(tmp_path / "o.yaml")
    assert cfg.dataset.path.endswith("o.images.parquet")
    ds = load(cfg.dataset, seed=0)
    assert ds.groups == ["EU", "NA"] and ds.classes == ["007", "008"]  # not 7, not missing


# ----------------------------------------------------------------------------- bad input


def test_a_layout_that_matches_nothing_is_one_line_with_what_it_expected_and_saw(tmp_path):
    folder = make_image_tree(tmp_path / "pets", per_leaf=2)
    res = run_cli("init", "images", str(folder), "--layout", "{age}_{gender}_*", "--target",
                  "age", "--group", "gender", "--out", str(tmp_path / "x.yaml"))
    line = one_line(res)
    assert "Traceback" not in res.stderr
    assert f"{folder}: none of its 8 images fit --layout '{{age}}_{{gender}}_*'" in line
    assert "which expects <age>_<gender>_* (1 path level" in line
    assert "it saw 'cat/f/img_0000.png' (3 path levels, the layout has 1)" in line
    assert not (tmp_path / "x.yaml").exists() and not (tmp_path / "x.images.csv").exists()


@pytest.fixture
def places(tmp_path, monkeypatch):
    make_image_tree(tmp_path / "pets", per_leaf=2)
    pd.DataFrame({"file": ["cat/f/img_0000.png"], "y": [1], "g": ["f"]}).to_csv(
        tmp_path / "table.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


BAD = [
    ("layout with a table", ["table.csv", "--layout", "{label}/*", "--target", "label",
                             "--group", "sex"],
     "--layout: table.csv is a file; --layout reads a folder of images (for a table, name its "
     "image column with --image)"),
    ("image with a layout", ["pets", "--layout", "{label}/{sex}/*", "--image", "file",
                             "--target", "label", "--group", "sex"],
     "--image: not used with --layout"),
    ("root with a layout", ["pets", "--layout", "{label}/{sex}/*", "--root", "x",
                            "--target", "label", "--group", "sex"], "--root: not used with"),
    ("folder without a layout", ["pets", "--image", "file", "--target", "label", "--group",
                                 "sex"],
     "--image: pets is a folder without a table (no *.parquet shards); for a folder of images, "
     "name the parts of each image's path with --layout, e.g. --layout '{label}/*'"),
    ("neither image nor layout", ["table.csv", "--target", "y", "--group", "g"],
     "--image: expected the column holding each row's image (or, for a folder of images "
     "without a table, --layout)"),
    ("target not a field", ["pets", "--layout", "{label}/{sex}/*", "--target", "labels",
                            "--group", "sex"],
     "--target: 'labels' is not a field of --layout '{label}/{sex}/*'; did you mean 'label'? "
     "(fields: label, sex)"),
    ("group not a field", ["pets", "--layout", "{label}/{sex}/*", "--target", "label",
                           "--group", "gender"], "--group: 'gender' is not a field"),
    ("split values", ["pets", "--layout", "{label}/{sex}/*", "--target", "sex", "--group",
                      "label", "--split", "label"],
     "split column 'label' holds cat, dog; expected train, val or test"),
    ("missing folder", ["nope", "--layout", "{label}/{sex}/*", "--target", "label", "--group",
                        "sex"], "nope: folder not found"),
    ("no images", ["empty_dir", "--layout", "{label}/{sex}/*", "--target", "label", "--group",
                   "sex"], "empty_dir: no image files (.jpg, .jpeg, .png"),
]


@pytest.mark.parametrize("what, args, expected", BAD, ids=[b[0] for b in BAD])
def test_wrong_flags_are_one_line_exit_2(places, what, args, expected):
    (places / "empty_dir").mkdir(exist_ok=True)
    (places / "empty_dir" / "notes.txt").write_text("x")
    line = one_line(cli("init", "images", *args, "--out", "o.yaml"))
    assert expected in line, line
    assert not (places / "o.yaml").exists() and not (places / "o.images.csv").exists()


def test_the_files_beside_the_config_are_not_overwritten_without_force(tmp_path, cache,
                                                                       monkeypatch):
    folder = make_utkface(tmp_path / "UTKFace", n=72)
    monkeypatch.chdir(tmp_path)
    args = ["init", "images", str(folder), "--layout", "{age}_{gender}_{race}_*", "--target",
            "gender", "--group", "race"]
    assert cli(*args).returncode == 0  # default name: the folder's, in the current folder
    assert {p.name for p in tmp_path.iterdir()} >= {"utkface.yaml", "utkface.images.csv",
                                                   "utkface.unmatched.txt"}
    (tmp_path / "utkface.yaml").unlink()
    line = one_line(cli(*args))
    assert "utkface.images.csv: already exists (it goes with utkface.yaml); pass --force" in line
    for k, name in enumerate(UTK_MISFITS):  # renamed to fit: with --force the stale list goes
        shutil.move(folder / name, folder / f"40_1_{k}_20170109150557335.jpg")
    assert cli(*args, "--force").returncode == 0
    assert not (tmp_path / "utkface.unmatched.txt").exists()
    assert len(read_table(tmp_path / "utkface.images.csv")) == 74
    assert yaml.safe_load((tmp_path / "utkface.yaml").read_text())["dataset"]["path"] == str(
        tmp_path / "utkface.images.csv")
