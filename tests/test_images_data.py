"""Image sources (CelebA, CheXpert, digits) and the decoded-image cache, on tiny built folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import chexpert_rows, grey_level, make_celeba, make_chexpert
from sklearn.datasets import load_digits

from fairensemble import DataError
from fairensemble.common.seeds import rng_for
from fairensemble.data import celeba, chexpert, decode, digits
from fairensemble.data.celeba import CelebAData
from fairensemble.data.chexpert import CheXpertData
from fairensemble.data.digits import DigitsData
from fairensemble.data.images import layout_rows
from fairensemble.data.sampling import stratified_subsample

N_CELEBA = 48
N_PATIENTS = 20


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory) -> Path:
    return make_celeba(tmp_path_factory.mktemp("celeba"), n=N_CELEBA, seed=0)


@pytest.fixture(scope="module")
def chexpert_root(tmp_path_factory) -> Path:
    return make_chexpert(tmp_path_factory.mktemp("chex"), n_patients=N_PATIENTS, seed=0)


@pytest.fixture
def celeba_copy(celeba_root, tmp_path) -> Path:
    return Path(shutil.copytree(celeba_root, tmp_path / "celeba"))


@pytest.fixture
def chexpert_copy(chexpert_root, tmp_path) -> Path:
    return Path(shutil.copytree(chexpert_root, tmp_path / chexpert_root.name))


def count_decodes(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = decode.decode_image

    def counting(path, *args, **kwargs):
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode, "decode_image", counting)
    return seen


def chex_cfg(root: Path, cache: Path, **kw) -> CheXpertData:
    base = {"root": str(root), "image_size": 8, "cache_dir": str(cache), "val_fraction": 0.25,
                "test_fraction": 0.25}
    return CheXpertData(**{**base, **kw})


def split_tables(cfg: CheXpertData, seed: int = 0) -> tuple[dict[str, pd.DataFrame], dict]:
    """The rows of each split as `run` splits them (pool / val / test), and the dropped
    counts."""
    table, dropped = chexpert.read_table(cfg)
    rows = layout_rows(table, chexpert.as_images(cfg), seed, "chexpert")
    return {name: table.iloc[rows.rows[idx]] for name, idx in rows.parts.items()}, dropped


# ----------------------------------------------------------------------------- sampling


def test_stratified_subsample_keeps_each_group_label_share_and_one_of_each():
    y = np.array([0] * 60 + [1] * 30 + [0] * 9 + [1] * 1)
    g = np.array([0] * 90 + [1] * 10)
    idx = stratified_subsample(y, g, 20, rng_for(0, "t"))
    assert len(idx) == 20 and len(np.unique(idx)) == 20 and np.all(np.diff(idx) > 0)
    strata = g[idx] * 2 + y[idx]
    # shares 12, 6, 1.8, 0.2 -> 12, 6, 2, 0 -> the empty stratum takes one from the largest
    assert np.bincount(strata, minlength=4).tolist() == [11, 6, 2, 1]
    again = stratified_subsample(y, g, 20, rng_for(0, "t"))
    assert np.array_equal(idx, again)
    assert np.array_equal(stratified_subsample(y, g, None, rng_for(0, "t")), np.arange(100))


# ----------------------------------------------------------------------------- CelebA


def test_celeba_splits_classes_groups_and_pixels_match_the_files(celeba_root, tmp_path):
    cfg = CelebAData(root=str(celeba_root), image_size=16, cache_dir=str(tmp_path))
    ds = celeba.load(cfg, seed=0)
    assert ds.groups == ["female", "male"]
    assert ds.classes == ["no Blond_Hair", "Blond_Hair"]
    assert ds.input_kind == "image" and len(ds.image_mean) == 3
    for code, split in enumerate((ds.pool, ds.val, ds.test)):
        files = np.arange(code, N_CELEBA, 3)  # image i is in split i % 3
        assert split.X.shape == (16, 3, 16, 16) and split.X.dtype == np.uint8
        assert split.g.tolist() == [(i // 3) % 2 for i in files]
        assert split.y.tolist() == [(i // 6) % 2 for i in files]
        # the centre crop removes the black bands: the image is its uniform grey
        means = split.X.reshape(len(files), -1).mean(axis=1)
        assert np.abs(means - [grey_level(i) for i in files]).max() < 3
    assert ds.info["counts"]["test"]["male"]["Blond_Hair"] == 4
    part = ds.pool.take(np.array([3, 0]))
    assert part.y.tolist() == [ds.pool.y[3], ds.pool.y[0]]
    assert np.array_equal(part.X[0], ds.pool.X[3])


def test_celeba_second_load_reuses_the_cache_and_a_touched_image_invalidates_it(
    celeba_copy, tmp_path, monkeypatch
):
    cfg = CelebAData(root=str(celeba_copy), image_size=8, cache_dir=str(tmp_path / "c"))
    seen = count_decodes(monkeypatch)
    first = celeba.load(cfg, seed=0)
    assert len(seen) == N_CELEBA
    second = celeba.load(cfg, seed=0)
    assert len(seen) == N_CELEBA  # nothing decoded again
    assert np.array_equal(np.asarray(first.test.X), np.asarray(second.test.X))
    assert len(list((tmp_path / "c").glob("*.npy"))) == 1
    img = celeba_copy / "img_align_celeba" / "000002.jpg"
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    celeba.load(cfg, seed=0)
    assert len(seen) == 2 * N_CELEBA
    assert len(list((tmp_path / "c").glob("*.npy"))) == 2


@pytest.mark.parametrize("damage", ["truncated", "wrong shape"])
def test_a_damaged_image_cache_is_decoded_again_with_a_warning(
    celeba_copy, tmp_path, monkeypatch, caplog, damage
):
    cfg = CelebAData(root=str(celeba_copy), image_size=8, cache_dir=str(tmp_path / "c"))
    seen = count_decodes(monkeypatch)
    first = np.asarray(celeba.load(cfg, seed=0).test.X).copy()
    (cache,) = (tmp_path / "c").glob("*.npy")
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:100])
    else:
        np.save(cache, np.zeros((2, 3, 8, 8), np.uint8))
    with caplog.at_level("WARNING", logger="fairensemble"):
        again = np.asarray(celeba.load(cfg, seed=0).test.X)
    assert len(seen) == 2 * N_CELEBA  # decoded again, not read from the damaged file
    assert np.array_equal(first, again)
    assert any("ignoring" in r.getMessage() and cache.name in r.getMessage()
               for r in caplog.records)


def test_chexpert_fractions_leaving_no_pool_are_named(chexpert_root, tmp_path):
    with pytest.raises(DataError, match=r"dataset.val_fraction: test_fraction \+ val_fraction "
                                        r"must be < 1, got 0.5 \+ 0.5"):
        chexpert.load(chex_cfg(chexpert_root, tmp_path, val_fraction=0.5, test_fraction=0.5),
                      seed=0)
    assert not list(tmp_path.glob("*.npy"))  # nothing decoded before the check


def test_celeba_caps_subsample_by_group_and_label_and_decode_only_used_images(
    celeba_root, tmp_path, monkeypatch
):
    cfg = CelebAData(root=str(celeba_root), image_size=8, cache_dir=str(tmp_path),
                     max_pool=8, max_test=4)
    seen = count_decodes(monkeypatch)
    ds = celeba.load(cfg, seed=3)
    assert (len(ds.pool), len(ds.val), len(ds.test)) == (8, 4, 4)
    assert len(seen) == 16
    # 16 pool images, 4 per group x label stratum -> 2 of each kept
    assert np.bincount(ds.pool.g * 2 + ds.pool.y, minlength=4).tolist() == [2, 2, 2, 2]
    assert np.bincount(ds.test.g * 2 + ds.test.y, minlength=4).tolist() == [1, 1, 1, 1]
    again = celeba.load(cfg, seed=3)
    assert np.array_equal(np.asarray(ds.pool.X), np.asarray(again.pool.X))


def test_celeba_custom_target_group_and_names(celeba_root, tmp_path):
    cfg = CelebAData(root=str(celeba_root), image_size=8, cache_dir=str(tmp_path),
                     target="Male", group="Blond_Hair", groups=["dark", "blond"])
    ds = celeba.load(cfg, seed=0)
    files = np.arange(0, N_CELEBA, 3)
    assert ds.groups == ["dark", "blond"]
    assert ds.pool.y.tolist() == [(i // 3) % 2 for i in files]
    assert ds.pool.g.tolist() == [(i // 6) % 2 for i in files]


def _rewrite(path: Path, edit) -> None:
    path.write_text(edit(path.read_text()))


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda r: (r / "list_eval_partition.txt").unlink(), "list_eval_partition.txt"),
        (lambda r: (r / "list_attr_celeba.txt").unlink(), "list_attr_celeba.txt"),
        (lambda r: (r / "img_align_celeba" / "000005.jpg").unlink(), "000005.jpg"),
        (lambda r: (r / "img_align_celeba" / "000007.jpg").write_bytes(b"not a jpeg"),
         "000007.jpg: unreadable image"),
        (lambda r: _rewrite(r / "list_attr_celeba.txt", lambda t: "47" + t[2:]),
         "line 1 says 47 images but 48 rows follow"),
        # every test image (i % 3 == 2) made Male: no female in test
        (lambda r: _rewrite(
            r / "list_attr_celeba.txt",
            lambda t: "\n".join(
                _set_male(line) if k >= 2 and (k - 2) % 3 == 2 else line
                for k, line in enumerate(t.split("\n"))
            )),
         "group 'female' has no images in the test split"),
    ],
)
def test_celeba_malformed_inputs_raise_one_line_naming_the_problem(
    celeba_copy, tmp_path, breakage, expected
):
    breakage(celeba_copy)
    cfg = CelebAData(root=str(celeba_copy), image_size=8, cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match=expected) as err:
        celeba.load(cfg, seed=0)
    assert "\n" not in str(err.value)


def _set_male(line: str) -> str:
    if not line.strip():
        return line
    parts = line.split()
    parts[1 + 20] = "1"  # Male is the 21st attribute
    return " ".join(parts)


def test_celeba_unknown_attribute_names_it_and_lists_valid_ones(celeba_root, tmp_path):
    cfg = CelebAData(root=str(celeba_root), cache_dir=str(tmp_path), target="Blonde_Hair")
    with pytest.raises(DataError, match=r"unknown attribute 'Blonde_Hair' \(dataset.target\);"
                                        r" valid names include Blond_Hair, Male"):
        celeba.load(cfg, seed=0)


# ----------------------------------------------------------------------------- CheXpert


def _expected_rows(uncertain: str = "zeros") -> list[tuple[int, dict]]:
    """(row number, row) of the frontal, known-sex rows the builder wrote."""
    keep = []
    for k, row in enumerate(chexpert_rows(N_PATIENTS, seed=0)):
        if row["Frontal/Lateral"] != "Frontal" or row["Sex"] == "Unknown":
            continue
        if uncertain == "drop" and row["Lung Opacity"] == "-1.0":
            continue
        keep.append((k, row))
    return keep


def test_chexpert_counts_labels_groups_and_pixels_match_the_csvs(chexpert_root, tmp_path):
    ds = chexpert.load(chex_cfg(chexpert_root, tmp_path), seed=0)
    splits, dropped = split_tables(chex_cfg(chexpert_root, tmp_path))
    expected = _expected_rows()
    by_path = {row["Path"]: (k, row) for k, row in expected}
    assert ds.groups == ["Female", "Male"] and ds.classes == ["no Lung Opacity", "Lung Opacity"]
    assert len(ds.pool) + len(ds.val) + len(ds.test) == len(expected) == sum(
        len(t) for t in splits.values())
    assert dropped == {"not frontal": N_PATIENTS, "Sex=Unknown": 2 * (N_PATIENTS // 5)}
    assert ds.info["dropped"] == dropped
    for name, split in (("pool", ds.pool), ("val", ds.val), ("test", ds.test)):
        rows = splits[name]
        assert split.X.shape == (len(rows), 1, 8, 8)
        for j, file in enumerate(rows["file"]):
            rel = "/".join(Path(file).parts[-4:])
            k, row = by_path[rel]
            assert split.y[j] == (1 if row["Lung Opacity"] == "1.0" else 0)
            assert ds.groups[split.g[j]] == row["Sex"]
            assert abs(float(split.X[j].mean()) - grey_level(k)) < 2


def test_chexpert_split_is_by_patient_seeded_and_spans_both_csvs(chexpert_root, tmp_path):
    splits, _ = split_tables(chex_cfg(chexpert_root, tmp_path))
    patients = {name: set(t["patient"]) for name, t in splits.items()}
    assert not (patients["pool"] & patients["val"] or patients["pool"] & patients["test"]
                or patients["val"] & patients["test"])
    # 16 patients of known sex: a quarter each (4) in test and val, 8 in the pool
    assert [len(patients[n]) for n in ("pool", "val", "test")] == [8, 4, 4]
    assert set(pd.concat(splits.values())["csv"]) == {"train.csv", "valid.csv"}
    same, _ = split_tables(chex_cfg(chexpert_root, tmp_path), seed=0)
    other, _ = split_tables(chex_cfg(chexpert_root, tmp_path), seed=1)
    assert all(same[n].index.equals(splits[n].index) for n in splits)
    assert not all(other[n].index.equals(splits[n].index) for n in splits)


@pytest.mark.parametrize("policy", ["zeros", "ones", "drop"])
def test_chexpert_uncertain_policy(chexpert_root, tmp_path, policy):
    table, dropped = chexpert.read_table(chex_cfg(chexpert_root, tmp_path, uncertain=policy))
    table = table[table["Sex"] != "Unknown"]  # kept in the table, left out by the pipeline
    rows = [row for _, row in _expected_rows()]
    pos = sum(r["Lung Opacity"] == "1.0" for r in rows)
    unc = sum(r["Lung Opacity"] == "-1.0" for r in rows)
    assert unc > 0 and pos > 0
    assert len(table) == len(rows) - (unc if policy == "drop" else 0)
    assert int((table["Lung Opacity"] == "Lung Opacity").sum()) == pos + (
        unc if policy == "ones" else 0)
    assert dropped.get("uncertain", 0) == (unc if policy == "drop" else 0)


def test_chexpert_full_size_folder_name_and_all_views(tmp_path):
    folder = make_chexpert(tmp_path / "raw", n_patients=10, small=False, seed=0)
    assert folder.name == "CheXpert-v1.0"
    cfg = chex_cfg(folder, tmp_path / "c", frontal_only=False, val_fraction=0.2,
                   test_fraction=0.2)
    ds = chexpert.load(cfg, seed=0)
    assert len(ds.pool) + len(ds.val) + len(ds.test) == 3 * (10 - 10 // 5)
    assert ds.info["dropped"] == {"Sex=Unknown": 3 * 2}


def test_chexpert_parallel_decoding_equals_serial(chexpert_root, tmp_path):
    serial = chexpert.load(chex_cfg(chexpert_root, tmp_path / "a"), seed=0)
    parallel = chexpert.load(chex_cfg(chexpert_root, tmp_path / "b", num_workers=2), seed=0)
    assert np.array_equal(np.asarray(serial.pool.X), np.asarray(parallel.pool.X))
    assert np.array_equal(np.asarray(serial.test.X), np.asarray(parallel.test.X))


def test_chexpert_unreadable_image_in_a_worker_names_the_file(chexpert_copy, tmp_path):
    (chexpert_copy / "train" / "patient00002" / "study2" / "view1_frontal.jpg").write_bytes(b"x")
    cfg = chex_cfg(chexpert_copy, tmp_path / "c", num_workers=2)
    with pytest.raises(DataError, match=r"patient00002/study2/view1_frontal.jpg: unreadable"):
        chexpert.load(cfg, seed=0)
    assert list((tmp_path / "c").glob("*.npy*")) == []  # no partial cache left behind


def _drop_column(csv: Path, column: str) -> None:
    lines = csv.read_text().splitlines()
    col = lines[0].split(",").index(column)
    csv.write_text("\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != col)
                             for line in lines) + "\n")


@pytest.mark.parametrize(
    "breakage, kw, expected",
    [
        (lambda r: _drop_column(r / "valid.csv", "Sex"), {},
         r"valid.csv: missing column 'Sex' \(dataset.group\)"),
        (lambda r: (r / "train.csv").unlink(), {}, r"train.csv: CheXpert file not found"),
        (lambda r: (r / "train" / "patient00001" / "study2" / "view1_frontal.jpg").unlink(), {},
         r"1 of \d+ images in column 'file' not found: "
         r"'train/patient00001/study2/view1_frontal.jpg'; looked in .*CheXpert-v1.0-small"),
        (lambda r: None, {"target": "Lung Opacities"}, r"missing column 'Lung Opacities'"),
        (lambda r: None, {"groups": ["Female", "Other"]},
         r"group 'Other' not found in column 'Sex' \(values: Female, Male, Unknown\)"),
    ],
)
def test_chexpert_malformed_inputs_raise_one_line_naming_the_problem(
    chexpert_copy, tmp_path, breakage, kw, expected
):
    breakage(chexpert_copy)
    with pytest.raises(DataError, match=expected) as err:
        chexpert.load(chex_cfg(chexpert_copy, tmp_path / "c", **kw), seed=0)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_classes_split_and_determinism():
    ds = digits.load(DigitsData(), seed=0)
    n = len(load_digits().target)
    assert ds.pool.X.shape[1:] == (1, 8, 8) and ds.pool.X.dtype == np.uint8
    assert len(ds.pool) + len(ds.test) == n and ds.val is None
    assert ds.classes == ["0-4", "5-9"] and ds.groups == ["A", "B"]
    # test holds round(0.3 * n) rows, within one row of 0.3 * n_s in each group x label stratum
    all_g = np.concatenate([ds.pool.g, ds.test.g])
    all_y = np.concatenate([ds.pool.y, ds.test.y])
    assert len(ds.test) == round(0.3 * n)
    for s in range(4):
        n_s = int(np.sum(all_g * 2 + all_y == s))
        assert abs(int(np.sum(ds.test.g * 2 + ds.test.y == s)) - 0.3 * n_s) < 1
    again = digits.load(DigitsData(), seed=0)
    assert np.array_equal(ds.pool.X, again.pool.X) and np.array_equal(ds.pool.g, again.pool.g)
    other = digits.load(DigitsData(), seed=1)
    assert not np.array_equal(ds.pool.g, other.pool.g)
    big = digits.load(DigitsData(image_size=16), seed=0)
    assert big.pool.X.shape == (len(ds.pool), 1, 16, 16)


def test_digits_second_group_is_the_mirror_image_and_nothing_else_changes():
    raw = load_digits()
    expected_pixels = np.round(raw.images / 16.0 * 255.0).astype(np.uint8)
    lookup = {expected_pixels[i].tobytes(): i for i in range(len(raw.target))}
    ds = digits.load(DigitsData(), seed=0)
    for split in (ds.pool, ds.test):
        for x, y, g in zip(split.X[:, 0], split.y, split.g):
            img = x[:, ::-1] if g == 1 else x
            i = lookup[np.ascontiguousarray(img).tobytes()]
            assert y == int(raw.target[i] >= 5)


@pytest.mark.parametrize("hard", ["A", "B"])
def test_digits_difficulty_changes_only_the_hard_group(hard):
    easy_cfg = DigitsData(hard_group=hard)
    hard_cfg = DigitsData(hard_group=hard, pixel_noise=0.2, rotation_deg=30, label_noise=0.2)
    base, harder = digits.load(easy_cfg, seed=0), digits.load(hard_cfg, seed=0)
    h = ["A", "B"].index(hard)
    for a, b in ((base.pool, harder.pool), (base.test, harder.test)):
        assert np.array_equal(a.g, b.g)
        easy = a.g != h
        assert np.array_equal(a.X[easy], b.X[easy]) and np.array_equal(a.y[easy], b.y[easy])
        changed = np.any(a.X[~easy] != b.X[~easy], axis=(1, 2, 3))
        assert changed.mean() > 0.95
    assert np.array_equal(base.test.y, harder.test.y)  # test labels stay clean
    n_hard_pool = int(np.sum(base.pool.g == h))
    flips = int(np.sum(base.pool.y != harder.pool.y))
    assert flips == round(0.2 * n_hard_pool) == harder.info["label_flips"]
    rotated_only = digits.load(DigitsData(hard_group=hard, rotation_deg=30), seed=0)
    assert np.array_equal(rotated_only.pool.y, base.pool.y)
