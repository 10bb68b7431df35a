"""Specifications of `dataset.kind: images`: a table with one image per row, as users have
them (a metadata CSV and image folders, Hugging Face Parquet shards), `init images`, and
what a run makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from builders import lesion_pixels, make_hf_parquet, make_lesions, png_bytes
from conftest import cli, run_cli
from PIL import Image

from fairensemble import DataError
from fairensemble.config import load_config
from fairensemble.data import decode
from fairensemble.data.images import ImagesData, layout_rows, load
from fairensemble.data.reader import read_table


@pytest.fixture(scope="module")
def lesions(tmp_path_factory) -> Path:
    """A skin-lesion layout: metadata.csv (ids without extension, lesion_id, some sex
    'unknown') and images in two folders."""
    return make_lesions(tmp_path_factory.mktemp("lesions") / "ham")


def lesion_cfg(meta: Path, cache: Path, **kw) -> ImagesData:
    base = dict(path=str(meta), image="image_id", roots=["images_part_1", "images_part_2"],
                suffix=".jpg", target="dx", positive="mel", group="sex",
                groups=["female", "male"], subject="lesion_id", image_size=16,
                cache_dir=str(cache))
    return ImagesData(**{**base, **kw})


def test_names_without_extension_are_found_across_roots_and_every_row_decodes(lesions, tmp_path):
    ds = load(lesion_cfg(lesions, tmp_path), seed=0)
    meta = pd.read_csv(lesions)
    kept = meta[meta["sex"] != "unknown"]
    assert len(ds.pool) + len(ds.test) + (len(ds.val) if ds.val else 0) == len(kept)
    assert ds.groups == ["female", "male"] and ds.classes == ["nv", "mel"]
    assert ds.pool.X.shape[1:] == (3, 16, 16) and ds.pool.X.dtype == np.uint8
    assert set(ds.info["image_roots"]) >= {str(lesions.parent / "images_part_1"),
                                          str(lesions.parent / "images_part_2")}


def test_fractions_leaving_no_pool_are_named_unless_a_split_column_fixes_the_splits(
        lesions, tmp_path):
    frame = read_table(lesions)
    cfg = lesion_cfg(lesions, Path("unused"), test_fraction=0.5, val_fraction=0.5)
    with pytest.raises(DataError, match=r"^dataset.val_fraction: test_fraction \+ val_fraction "
                                        r"must be < 1, got 0.5 \+ 0.5$"):
        layout_rows(frame, cfg, seed=0, source="t")
    lesion = pd.factorize(frame["lesion_id"])[0]  # a lesion's images share a split
    fixed = frame.assign(part=np.where(lesion % 3 == 0, "test", "train"))
    rows = layout_rows(fixed, cfg.model_copy(update={"split": "part"}), seed=0, source="t")
    assert len(rows.parts["test"]) > 0 and len(rows.parts["pool"]) > 0


def test_no_subject_is_in_two_splits(lesions):
    frame = read_table(lesions)
    rows = layout_rows(frame, lesion_cfg(lesions, Path("unused")), seed=0, source="t")
    subjects = {name: set(rows.subjects[idx]) for name, idx in rows.parts.items()}
    assert subjects["pool"].isdisjoint(subjects["test"])
    assert subjects["pool"].isdisjoint(subjects["val"])
    assert subjects["val"].isdisjoint(subjects["test"])
    # lesions with several images exist, so whole-subject splitting was put to the test
    assert frame["lesion_id"].duplicated().any()
    # and the split sizes still follow the fractions, by subjects
    n = sum(len(s) for s in subjects.values())
    assert abs(len(subjects["test"]) - 0.3 * n) <= 2


def test_a_missing_image_names_its_id_and_the_folders_searched(lesions, tmp_path):
    frame = read_table(lesions)
    frame.loc[5, "image_id"] = "ISIC_9999999"
    frame.to_csv(tmp_path / "meta.csv", index=False)
    for part in ("images_part_1", "images_part_2"):
        (tmp_path / part).symlink_to(lesions.parent / part)
    with pytest.raises(DataError) as err:
        load(lesion_cfg(tmp_path / "meta.csv", tmp_path / "c"), seed=0)
    message = str(err.value)
    assert "1 of" in message and "'ISIC_9999999'" in message
    assert f"looked in {tmp_path / 'images_part_1'}, {tmp_path / 'images_part_2'} with " \
           "suffix '.jpg'" in message
    assert "\n" not in message


def test_an_undecodable_image_is_named_by_its_row(lesions, tmp_path):
    for part in ("images_part_1", "images_part_2"):
        (tmp_path / part).mkdir()
        for f in (lesions.parent / part).iterdir():
            (tmp_path / part / f.name).write_bytes(f.read_bytes())
    first = read_table(lesions)["image_id"].iloc[0]
    broken = next((tmp_path).glob(f"*/{first}.jpg"))
    broken.write_bytes(b"not an image")
    with pytest.raises(DataError, match=rf"{first}: unreadable image") as err:
        load(lesion_cfg(lesions, tmp_path / "c", roots=[str(tmp_path / "images_part_1"),
                                                     str(tmp_path / "images_part_2")]), seed=0)
    assert "\n" not in str(err.value)


def test_hugging_face_parquet_shards_with_the_image_struct_load_in_name_order(tmp_path):
    folder = make_hf_parquet(tmp_path / "hf", n=120, shards=2)
    cfg = ImagesData(path=str(folder), image="image", target="label", group="gender",
                     image_size=16, cache_dir=str(tmp_path / "c"))
    ds = load(cfg, seed=0)
    assert ds.groups == ["man", "woman"] and ds.classes == ["0", "1"]
    assert ds.info["embedded_images"] == 120
    # the pixels are the PNG bytes' pixels: decode one directly and find it in the splits
    frame = read_table(folder)
    assert len(frame) == 120 and frame["image"].iloc[0]["path"] == "img_00000.png"
    one = decode.decode_image(frame["image"].iloc[61]["bytes"], 16, "RGB", "crop")
    all_x = np.concatenate([np.asarray(s.X) for s in (ds.pool, ds.test, ds.val) if s])
    assert any(np.array_equal(one, x) for x in all_x)


def test_a_binary_column_of_encoded_images_works_too(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "png": [png_bytes(lesion_pixels(i % 2, "female" if i % 3 else "male", rng))
                for i in range(60)],
        "y": [i % 2 for i in range(60)],
        "g": ["a" if i % 3 else "b" for i in range(60)],
    })
    frame.to_parquet(tmp_path / "t.parquet")
    ds = load(ImagesData(path=str(tmp_path / "t.parquet"), image="png", target="y", group="g",
                         image_size=8, cache_dir=str(tmp_path / "c")), seed=0)
    assert ds.info["embedded_images"] == 60 and ds.groups == ["a", "b"]


def test_exif_orientation_is_applied_before_decoding(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255  # left half white, stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tmp_path / "side.jpg", exif=exif.tobytes(), quality=95)
    upright = decode.decode_image(str(tmp_path / "side.jpg"), 20, "L", "resize")
    # displayed upright, the white half is the top half
    assert upright[0, :10].mean() > 200 and upright[0, 10:].mean() < 50


def test_grayscale_images_decode_to_one_channel_and_init_proposes_gray(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        label = i % 2
        img = np.clip(rng.normal(80 + 80 * label, 20, (24, 24)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"x{i}.png")
        rows.append({"file": f"x{i}.png", "finding": label, "sex": "F" if i % 4 < 2 else "M"})
    pd.DataFrame(rows).to_csv(tmp_path / "xrays.csv", index=False)
    cli("init", "images", str(tmp_path / "xrays.csv"), "--image", "file", "--target",
        "finding", "--group", "sex", "--out", str(tmp_path / "x.yaml"))
    cfg = load_config(tmp_path / "x.yaml")
    assert cfg.dataset.color == "gray" and cfg.dataset.image_size == 24
    ds = load(cfg.dataset.model_copy(update={"cache_dir": str(tmp_path / "c")}), seed=0)
    assert ds.pool.X.shape[1] == 1


def test_a_split_column_fixes_the_splits_and_an_unknown_value_is_one_line(tmp_path):
    folder = make_hf_parquet(tmp_path / "hf", n=90, shards=1)
    frame = read_table(folder)
    frame["fold"] = np.array(["training", "validation", "test"])[np.arange(90) % 3]
    frame.to_parquet(tmp_path / "split.parquet")
    cfg = ImagesData(path=str(tmp_path / "split.parquet"), image="image", target="label",
                     group="gender", split="fold", image_size=8, cache_dir=str(tmp_path / "c"))
    ds = load(cfg, seed=0)
    assert (len(ds.pool), len(ds.val), len(ds.test)) == (30, 30, 30)
    frame.loc[4, "fold"] = "holdout"
    frame.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"split column 'fold' holds holdout; expected train, "
                                        r"val or test \(map them in dataset.split_values\)"):
        load(cfg.model_copy(update={"path": str(tmp_path / "bad.parquet")}), seed=0)
    mapped = cfg.model_copy(update={"path": str(tmp_path / "bad.parquet"), "split_values": {
        "training": "train", "validation": "val", "test": "test", "holdout": "test"}})
    assert len(load(mapped, seed=0).test) == 31


# ----------------------------------------------------------------------------- init -> run


@pytest.fixture(scope="module")
def lesion_run(lesions, tmp_path_factory):
    """`init images` on the lesion layout, then `run` on the config it wrote, unedited."""
    work = tmp_path_factory.mktemp("lesion_run")
    init = run_cli("init", "images", str(lesions), "--image", "image_id", "--target", "dx",
                   "--group", "sex", "--root", "images_part_1", "--root", "images_part_2",
                   "--subject", "lesion_id", "--positive", "mel", "--out",
                   str(work / "lesions.yaml"), cwd=work)
    assert init.returncode == 0, init.stderr
    env_cache = work / "cache"
    text = (work / "lesions.yaml").read_text()
    run = run_cli("run", str(work / "lesions.yaml"), "--out", str(work / "run"), cwd=work,
                  env={"FAIRENSEMBLE_CACHE": str(env_cache)})
    return work, init, text, run


def test_init_images_finds_the_suffix_leaves_unknown_sex_out_and_proposes_a_cpu_sweep(lesion_run):
    _, init, text, _ = lesion_run
    cfg = yaml.safe_load(text)
    ds = cfg["dataset"]
    assert (ds["kind"], ds["image"], ds["suffix"], ds["subject"]) == (
        "images", "image_id", ".jpg", "lesion_id")
    assert ds["groups"] == ["female", "male"]  # 'unknown' is a missing value, not a group
    assert ds["image_size"] == 16  # the images are 20x16: never upsampled
    assert cfg["model"]["name"] == "cnn" and cfg["ensemble"]["members"] == 5
    assert "295 found, 0 not found" in init.stdout or "found, 0 not found" in init.stdout
    assert "20x16" in init.stdout
    assert "On a GPU" in text and "resnet50" in text


def test_init_images_then_run_unedited_gives_a_report_well_above_chance(lesion_run):
    work, _, _, run = lesion_run
    assert run.returncode == 0, run.stderr
    table = pd.read_parquet(work / "run" / "metrics.parquet")
    E = int(table["k"].max())
    overall = table[(table["k"] == E) & (table["group"] == "overall")
                    & (table["metric"] == "balanced_accuracy") & (table["post"] == "none")]
    assert overall["mean"].mean() > 0.75  # chance is 0.5
    assert (work / "run" / "report.html").is_file()
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["intervals"] == "bootstrap"  # one replicate


def test_a_deleted_image_stops_the_next_run_with_one_line_and_keeps_every_cell(
        lesion_run, lesions, tmp_path):
    work, _, _, _ = lesion_run
    cells_before = sorted(p.name for p in (work / "run" / "cells").glob("*.json"))
    victim = next(lesions.parent.glob("images_part_2/*.jpg"))
    data = victim.read_bytes()
    victim.unlink()
    try:
        res = run_cli("run", str(work / "lesions.yaml"), "--out", str(work / "run"), cwd=work,
                      env={"FAIRENSEMBLE_CACHE": str(work / "cache")})
    finally:
        victim.write_bytes(data)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"'{victim.stem}'" in lines[0] and "images_part_2" in lines[0]
    assert sorted(p.name for p in (work / "run" / "cells").glob("*.json")) == cells_before


def test_hugging_face_parquet_goes_from_init_to_a_report_unedited(tmp_path):
    folder = make_hf_parquet(tmp_path / "hf" / "data", n=160, shards=2)
    init = run_cli("init", "images", str(folder), "--image", "image", "--target", "label",
                   "--group", "gender", "--out", str(tmp_path / "hf.yaml"), cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    cfg = yaml.safe_load((tmp_path / "hf.yaml").read_text())
    assert cfg["dataset"]["path"] == str(folder) and "roots" not in cfg["dataset"]
    run = run_cli("run", str(tmp_path / "hf.yaml"), "--out", str(tmp_path / "run"), cwd=tmp_path,
                  env={"FAIRENSEMBLE_CACHE": str(tmp_path / "cache")})
    assert run.returncode == 0, run.stderr
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"man", "woman"} <= set(table["group"])


def test_init_images_reports_images_it_cannot_find(lesions, tmp_path):
    frame = read_table(lesions)
    known = frame.index[frame["sex"] != "unknown"]  # rows of 'unknown' sex are left out anyway
    frame.loc[known[[3, 9]], "image_id"] = ["nope_1", "nope_2"]
    frame.to_csv(tmp_path / "meta.csv", index=False)
    res = cli("init", "images", str(tmp_path / "meta.csv"), "--image", "image_id", "--target",
              "dx", "--group", "sex", "--root", str(lesions.parent / "images_part_1"), "--root",
              str(lesions.parent / "images_part_2"), "--suffix", ".jpg", "--out",
              str(tmp_path / "m.yaml"))
    assert res.returncode == 0, res.stdout
    out = " ".join(res.stdout.split())
    assert "2 not found (e.g. 'nope_1', 'nope_2')" in out
    assert "`run` stops naming them" in out


@pytest.mark.parametrize("args, expected", [
    (["--image", "Image_ID"], "image column 'Image_ID' not found; did you mean 'image_id'?"),
    (["--image", "image_id", "--subject", "lesion"], "subject column 'lesion' not found"),
])
def test_init_images_bad_input_is_one_line(lesions, tmp_path, args, expected):
    res = cli("init", "images", str(lesions), *args, "--target", "dx", "--group", "sex",
              "--out", str(tmp_path / "x.yaml"))
    assert res.returncode == 2
    assert expected in res.stderr and len(res.stderr.strip().splitlines()) == 1
