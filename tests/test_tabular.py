"""Specifications of the tabular sources: CSV/Parquet tables and UCI Adult."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairensemble import DataError
from fairensemble.data import adult
from fairensemble.data.adult import AdultData
from fairensemble.data.adult import load as load_adult
from fairensemble.data.tabular import TableData, load_table

GROUP_SIZES = {"a": 300, "b": 200, "c": 100}


def make_frame(seed: int = 0) -> pd.DataFrame:
    """600 rows, 3 groups (300/200/100), 3 classes, numeric + categorical features with NaNs."""
    rng = np.random.default_rng(seed)
    group = np.repeat(list(GROUP_SIZES), list(GROUP_SIZES.values()))
    n = len(group)
    label = rng.choice(["x", "y", "z"], size=n, p=[0.5, 0.3, 0.2])
    size = rng.normal(10.0, 3.0, n).round(3)
    size[rng.choice(n, 30, replace=False)] = np.nan
    color = rng.choice(["red", "green", "blue", "purple"], size=n, p=[0.4, 0.3, 0.25, 0.05])
    color = color.astype(object)
    color[rng.choice(n, 20, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "rid": np.arange(n),
            "size": size,
            "count": rng.integers(0, 50, n),
            "color": color,
            "grp": group,
            "label": label,
        }
    )


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "t.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def table(path: Path, **kw) -> TableData:
    return TableData(path=str(path), target="label", group="grp", **kw)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write_csv(tmp_path, make_frame())


# ----------------------------------------------------------------------------- tables


def test_csv_with_three_groups_and_three_classes_loads_all_rows(csv_path: Path) -> None:
    ds = load_table(table(csv_path, drop=["rid"]), seed=0)
    assert ds.classes == ["x", "y", "z"]
    assert ds.groups == ["a", "b", "c"]
    assert ds.val is None
    assert len(ds.pool) + len(ds.test) == 600
    assert len(ds.test) == 180  # round(0.3 * 600)
    assert ds.info["group_counts"] == GROUP_SIZES
    frame = make_frame()
    assert ds.info["class_counts"] == frame["label"].value_counts().to_dict()
    assert list(ds.pool.X.columns) == ["size", "count", "color"]
    assert ds.info["numeric_features"] == ["size", "count"]
    assert ds.info["categorical_features"] == ["color"]


def test_splits_keep_group_by_label_proportions_within_one_row(csv_path: Path) -> None:
    ds = load_table(table(csv_path, test_fraction=0.3, val_fraction=0.2), seed=3)
    frame = make_frame()
    parts = {"pool": ds.pool, "val": ds.val, "test": ds.test}
    ids = np.concatenate([s.X["rid"].to_numpy() for s in parts.values()]).astype(int)
    assert sorted(ids) == list(range(600))  # disjoint and complete
    assert len(ds.val) == 120 and len(ds.test) == 180
    for g, gname in enumerate(ds.groups):
        for c, cname in enumerate(ds.classes):
            n_stratum = int(((frame["grp"] == gname) & (frame["label"] == cname)).sum())
            for name, fraction in (("test", 0.3), ("val", 0.2)):
                split = parts[name]
                n = int(((split.g == g) & (split.y == c)).sum())
                assert abs(n - fraction * n_stratum) < 1.0, (name, gname, cname)
    # labels and groups travel with their rows
    rid = ds.test.X["rid"].to_numpy().astype(int)
    assert list(np.asarray(ds.classes)[ds.test.y]) == frame["label"].to_numpy()[rid].tolist()
    assert list(np.asarray(ds.groups)[ds.test.g]) == frame["grp"].to_numpy()[rid].tolist()


def test_split_is_reproducible_from_the_seed(csv_path: Path) -> None:
    cfg = table(csv_path)
    first, again, other = (load_table(cfg, seed=s).test.X["rid"].to_numpy() for s in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_groups_select_and_order_groups_and_count_dropped_rows(csv_path: Path) -> None:
    ds = load_table(table(csv_path, groups=["c", "a"]), seed=0)
    assert ds.groups == ["c", "a"]
    assert ds.info["dropped_groups"] == 200
    assert ds.info["group_counts"] == {"c": 100, "a": 300}
    frame = make_frame()
    rid = ds.pool.X["rid"].to_numpy().astype(int)
    assert (ds.pool.g == (frame["grp"].to_numpy()[rid] == "a")).all()  # c -> 0, a -> 1


def test_min_group_size_merges_rare_groups_into_other_listed_last(csv_path: Path) -> None:
    ds = load_table(table(csv_path, min_group_size=150), seed=0)
    assert ds.groups == ["a", "b", "other"]
    assert ds.info["merged_into_other"] == {"c": 100}
    assert ds.info["group_counts"] == {"a": 300, "b": 200, "other": 100}


def test_positive_value_makes_a_binary_target(csv_path: Path, tmp_path: Path) -> None:
    ds = load_table(table(csv_path, positive="z"), seed=0)
    assert ds.classes == ["other", "z"]
    assert ds.info["class_counts"]["z"] == int((make_frame()["label"] == "z").sum())
    # a two-valued integer target keeps its negative value's name
    frame = make_frame()
    frame["label"] = (frame["label"] == "y").astype(int)
    ds = load_table(table(write_csv(tmp_path, frame, "int.csv"), positive=1), seed=0)
    assert ds.classes == ["0", "1"]
    assert ds.info["class_counts"] == {"0": int((frame["label"] == 0).sum()),
                                       "1": int(frame["label"].sum())}


def test_prepare_standardises_with_training_draw_statistics_only(csv_path: Path) -> None:
    ds = load_table(table(csv_path, drop=["rid"]), seed=0)
    train = ds.pool.take(np.arange(150))
    X_train, X_test = ds.prepare(train, [ds.test])
    assert X_train.dtype == np.float32 and X_test.dtype == np.float32
    np.testing.assert_allclose(X_train[:, :2].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(X_train[:, :2].std(axis=0), 1.0, atol=1e-5)
    # test column = (value, NaN -> TRAIN median) standardised by TRAIN mean/std
    raw = train.X["size"].to_numpy()
    filled = np.where(np.isnan(raw), np.nanmedian(raw), raw)
    test_raw = ds.test.X["size"].to_numpy()
    expected = (np.where(np.isnan(test_raw), np.nanmedian(raw), test_raw) - filled.mean())
    np.testing.assert_allclose(X_test[:, 0], expected / filled.std(), rtol=1e-5, atol=1e-5)


def test_one_hot_layout_is_fixed_by_the_table_and_statistics_by_the_draw(csv_path: Path) -> None:
    ds = load_table(table(csv_path, drop=["rid"]), seed=0)
    color = ds.pool.X["color"]
    train = ds.pool.take(np.flatnonzero((color != "purple").to_numpy()))
    X_train, X_test = ds.prepare(train, [ds.test])
    X_full, _ = ds.prepare(ds.pool, [ds.test])
    # every draw gets the same columns: 2 numeric + the table's 5 colour categories
    assert X_train.shape[1] == X_full.shape[1] == 2 + 5
    purple = 2 + ["blue", "green", "missing", "purple", "red"].index("purple")
    assert (X_train[:, purple] == 0).all()
    is_purple = (ds.test.X["color"] == "purple").to_numpy()
    assert is_purple.sum() > 0
    assert (X_test[is_purple, purple] == 1).all()
    assert (X_test[:, 2:].sum(axis=1) == 1).all()


def test_impute_median_keeps_rows_and_drop_removes_them(csv_path: Path) -> None:
    frame = make_frame()
    n_nan_rows = int(frame[["size", "color"]].isna().any(axis=1).sum())
    median = load_table(table(csv_path, drop=["rid"], impute="median"), seed=0)
    assert median.info["rows_used"] == 600 and median.info["dropped_missing"] == 0
    X_train, X_test = median.prepare(median.pool, [median.test])
    assert not np.isnan(X_train).any() and not np.isnan(X_test).any()
    # categorical NaN becomes its own "missing" category (one-hot columns in sorted order)
    categories = sorted(median.pool.X["color"].fillna("missing").unique())
    assert categories == ["blue", "green", "missing", "purple", "red"]
    missing = median.pool.X["color"].isna().to_numpy()
    np.testing.assert_array_equal(X_train[:, 2 + 2], missing.astype(np.float32))

    drop = load_table(table(csv_path, drop=["rid"], impute="drop"), seed=0)
    assert drop.info["dropped_missing"] == n_nan_rows
    assert len(drop.pool) + len(drop.test) == 600 - n_nan_rows
    assert not drop.pool.X.isna().any().any()


def test_parquet_loads_exactly_like_csv(csv_path: Path, tmp_path: Path) -> None:
    pq_path = tmp_path / "t.parquet"
    make_frame().to_parquet(pq_path, index=False)
    a = load_table(table(csv_path, val_fraction=0.1), seed=4)
    b = load_table(table(pq_path, val_fraction=0.1), seed=4)
    assert (a.classes, a.groups) == (b.classes, b.groups)
    for sa, sb in ((a.pool, b.pool), (a.val, b.val), (a.test, b.test)):
        pd.testing.assert_frame_equal(sa.X, sb.X)
        np.testing.assert_array_equal(sa.y, sb.y)
        np.testing.assert_array_equal(sa.g, sb.g)
    for xa, xb in zip(a.prepare(a.pool, [a.test]), b.prepare(b.pool, [b.test])):
        np.testing.assert_array_equal(xa, xb)


def test_group_as_feature_adds_the_group_as_a_categorical(csv_path: Path) -> None:
    ds = load_table(table(csv_path, drop=["rid"], group_as_feature=True), seed=0)
    assert ds.info["categorical_features"] == ["color", "grp"]
    X_train, _ = ds.prepare(ds.pool, [ds.test])
    np.testing.assert_array_equal(X_train[:, -3:].argmax(axis=1), ds.pool.g)


# ----------------------------------------------------------------------------- bad tables


def _bad(tmp_path: Path, frame: pd.DataFrame | None = None, text: str | None = None,
         name: str = "bad.csv", **kw) -> DataError:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    elif frame is not None:
        frame.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_table(table(path, **kw), seed=0)
    assert "\n" not in str(err.value)
    return err.value


def test_missing_file_and_unsupported_extension_name_the_file(tmp_path: Path) -> None:
    assert "nope.csv: file not found" in str(_bad(tmp_path, name="nope.csv"))
    assert "t.xlsx: a .xlsx file is not a table this reader knows; save it as CSV or Parquet" \
        in str(_bad(tmp_path, text="a,b\n1,2\n", name="t.xlsx"))


def test_empty_files_are_rejected(tmp_path: Path) -> None:
    assert "empty file (no columns)" in str(_bad(tmp_path, text=""))
    assert "empty table (0 rows)" in str(_bad(tmp_path, text="label,grp,size\n"))


@pytest.mark.parametrize(
    ("change", "kw", "expected"),
    [
        (lambda f: f.drop(columns="label"), {}, "target column 'label' not found"),
        (lambda f: f.drop(columns="grp"), {}, "group column 'grp' not found"),
        (None, {"groups": ["a", "d"]}, "group 'd' not found in column 'grp'"),
        (lambda f: f.assign(label="x"), {}, "target column 'label' has one class ('x')"),
        (None, {"positive": "w"}, "positive value 'w' not found in target column 'label'"),
        (None, {"features": ["size", "weight"]}, "feature column 'weight' not found"),
        (None, {"test_fraction": 0.6, "val_fraction": 0.4},
         "dataset.val_fraction: test_fraction + val_fraction must be < 1, got 0.6 + 0.4"),
    ],
)
def test_bad_tables_name_the_column(tmp_path: Path, change, kw, expected) -> None:
    frame = make_frame() if change is None else change(make_frame())
    assert expected in str(_bad(tmp_path, frame, **kw))


def test_text_in_a_mostly_numeric_column_names_column_and_value(tmp_path: Path) -> None:
    frame = make_frame()
    frame["count"] = frame["count"].astype(object)
    frame.loc[7, "count"] = "twelve"
    err = str(_bad(tmp_path, frame))
    assert "column 'count' is numeric but holds text 'twelve' (data row 8)" in err
    assert "if that value means missing, list it in dataset.na_values" in err
    # a text column with a few numbers in it is categorical, not an error
    frame = make_frame()
    frame.loc[:9, "color"] = "3"
    ds = load_table(table(write_csv(tmp_path, frame, "ok.csv")), seed=0)
    assert "color" in ds.info["categorical_features"]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_na_values_read_a_tables_own_missing_marker_as_missing(tmp_path: Path, suffix) -> None:
    frame = make_frame()
    blanks = frame["size"].isna()
    marked = frame.assign(size=frame["size"].astype(str).where(~blanks, "?"))  # text in Parquet
    marked.loc[[3, 4], "grp"] = "?"  # rows whose group is unknown are dropped, not a group "?"
    path = tmp_path / f"t.{suffix}"
    marked.to_csv(path, index=False) if suffix == "csv" else marked.to_parquet(path, index=False)
    if suffix == "csv":  # without it, '?' makes `size` text: an error that names the fix
        assert "dataset.na_values" in str(_bad(tmp_path, marked, name="plain.csv"))
    got = load_table(table(path, drop=["rid"], na_values=["?"]), seed=0)
    want = load_table(table(write_csv(tmp_path, frame.drop(index=[3, 4]), "want.csv"),
                            drop=["rid"]), seed=0)
    assert "size" in got.info["numeric_features"] and got.groups == want.groups
    assert got.info["rows_used"] == want.info["rows_used"] == len(frame) - 2
    for a, b in ((got.pool, want.pool), (got.test, want.test)):
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.g, b.g)
        pd.testing.assert_frame_equal(a.X.reset_index(drop=True), b.X.reset_index(drop=True))


# ----------------------------------------------------------------------------- UCI Adult


def test_adult_uses_the_official_split_and_drops_fnlwgt() -> None:
    ds = load_adult(AdultData(), seed=0)
    assert ds.classes == ["<=50K", ">50K"]
    assert ds.groups == ["Male", "Female"]
    assert len(ds.pool) == 32561 and len(ds.test) == 16281 and ds.val is None
    assert int(ds.test.y.sum()) == 3846  # prevalence 0.2362
    assert ds.test.y.mean() == pytest.approx(0.2362, abs=1e-4)
    assert np.bincount(ds.test.g).tolist() == [10860, 5421]
    assert "fnlwgt" not in ds.pool.X.columns and "sex" not in ds.pool.X.columns
    assert ds.pool.X["workclass"].isna().sum() == 1836  # "?" read as missing
    X_train, X_test = ds.prepare(ds.pool.take(np.arange(5000)), [ds.test])
    assert X_train.shape[1] == X_test.shape[1] and not np.isnan(X_test).any()


def test_adult_race_groups_merge_rare_values_and_val_is_carved_from_adult_data() -> None:
    cfg = AdultData(group="race", min_group_size=500, impute="drop",
                    val_fraction=0.1)
    ds = load_adult(cfg, seed=0)
    assert ds.groups == ["White", "Black", "Asian-Pac-Islander", "other"]
    assert set(ds.info["merged_into_other"]) == {"Amer-Indian-Eskimo", "Other"}
    assert len(ds.test) == 15060  # adult.test rows without a "?"
    assert len(ds.pool) + len(ds.val) == 30162  # adult.data rows without a "?"
    assert len(ds.val) == 3016


def test_adult_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "adult.data").write_text("".join(_bundled_lines("adult.data")[:20]))
    with pytest.raises(DataError, match=r"adult\.test: file not found"):
        load_adult(AdultData(root=str(tmp_path)), seed=0)


def _bundled_lines(name: str) -> list[str]:
    with gzip.open(adult.BUNDLED / f"{name}.gz", "rt") as fh:
        return fh.read().splitlines(keepends=True)


def test_a_users_own_copy_plain_or_gzip_reads_like_the_bundled_one(tmp_path: Path) -> None:
    """The test file's first line and its labels ending in a dot are handled in both forms."""
    data, test = _bundled_lines("adult.data"), _bundled_lines("adult.test")
    assert test[0].startswith("|1x3") and test[1].rstrip().endswith("<=50K.")
    (tmp_path / "adult.data").write_text("".join(data[:400]))
    with gzip.open(tmp_path / "adult.test.gz", "wt") as fh:
        fh.write("".join(test[:301]))  # the header line and 300 rows
    ds = load_adult(AdultData(root=str(tmp_path)), seed=0)
    assert len(ds.pool) == 400 and len(ds.test) == 300
    assert set(ds.test.y.tolist()) == {0, 1}  # '<=50K.' and '>50K.' both read as classes
    assert ds.info["files"] == [str(tmp_path / "adult.data"), str(tmp_path / "adult.test.gz")]


def test_a_bundled_file_that_does_not_match_its_checksum_stops_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("adult.data.gz", "adult.test.gz"):
        shutil.copy(adult.BUNDLED / name, tmp_path / name)
    with open(tmp_path / "adult.test.gz", "r+b") as fh:
        fh.truncate(1000)
    monkeypatch.setattr(adult, "BUNDLED", tmp_path)
    with pytest.raises(DataError, match=r"adult\.test\.gz: bundled UCI Adult file does not "
                                        r"match its checksum") as err:
        load_adult(AdultData(), seed=0)
    assert "\n" not in str(err.value)


def test_the_module_writes_the_bundled_rows_as_a_csv_with_a_header(tmp_path: Path) -> None:
    out = tmp_path / "census.csv"
    assert adult.main(["--csv", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == adult.COLUMNS and len(frame) == 32561
    assert set(frame["income"]) == {"<=50K", ">50K"}
