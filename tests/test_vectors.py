"""Specifications of vector features (embeddings): Parquet / Arrow list, fixed-size-list and
tensor columns, and .npy matrices beside a table, from `init table` to `run`; their
standardisation with the training draw's statistics; one line for a column that cannot be
vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import cli
from typer.testing import CliRunner

from fairensemble import DataError
from fairensemble.cli import app
from fairensemble.config import load_config
from fairensemble.data.reader import read_table
from fairensemble.data.tabular import TableData, assemble, load_table
from fairensemble.data.vectors import decode

N, D = 400, 8
SHRINK = ["--set", "train.epochs=10", "--set", "ensemble.members=2", "--set", "ensemble.k=[1,2]",
          "--set", "replicates=1", "--set", "ratios=[0,1]", "--set", "executor.kind=serial"]


def embeddings(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors [N, D] float32, labels, groups): group b (a third of the rows) follows a noisier
    rule of the first two dimensions. Every vector is distinct, so a row is found by its first
    element."""
    rng = np.random.default_rng(seed)
    V = rng.normal(1.5, 2.0, (N, D)).astype(np.float32)
    g = np.where(rng.random(N) < 1 / 3, "b", "a")
    noise = np.where(g == "b", 1.0, 0.2) * rng.normal(size=N)
    y = (V[:, 0] - V[:, 1] + noise > 0).astype(int)
    return V, y, g


def list_array(V: np.ndarray, kind: str) -> pa.Array:
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(V.reshape(-1)), V.shape[1])
    return fixed if kind == "fixed" else fixed.cast(pa.list_(pa.float32()))


def write_source(folder: Path, kind: str) -> tuple[list[str], np.ndarray]:
    """The data set as a Parquet with a list<float32> ('list') or fixed_size_list ('fixed')
    `embedding` column, or ('npy') a CSV with a numeric column plus a row-aligned .npy: the
    `init table` arguments and the stored vectors."""
    V, y, g = embeddings()
    if kind == "npy":
        pd.DataFrame({"age": np.arange(N) % 50, "label": y, "group": g}).to_csv(
            folder / "people.csv", index=False)
        np.save(folder / "emb.npy", V)
        return [str(folder / "people.csv"), "--vectors", f"embedding={folder / 'emb.npy'}"], V
    table = pa.table({"embedding": list_array(V, kind), "label": y, "group": g})
    pq.write_table(table, folder / "emb.parquet")
    return [str(folder / "emb.parquet")], V


def one_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)  # handled: no other exception escaped
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


# ----------------------------------------------------------------------------- init -> run


@pytest.mark.parametrize("kind", ["list", "fixed", "npy"])
def test_embeddings_go_from_init_table_to_run_unedited(tmp_path, kind):
    args, _ = write_source(tmp_path, kind)
    out = tmp_path / "emb.yaml"
    res = cli("init", "table", *args, "--target", "label", "--group", "group", "--out",
              str(out))
    assert res.returncode == 0, res.stderr
    assert f"embedding{' (emb.npy, one row per table row)' if kind == 'npy' else ''}: " \
           f"{D}-dimensional vectors -> {D} features" in res.stdout
    cfg = load_config(out)
    if kind == "npy":
        assert cfg.dataset.vectors == {"embedding": str((tmp_path / "emb.npy").resolve())}
    run = cli("run", str(out), "--out", str(tmp_path / "run"), *SHRINK)
    assert run.returncode == 0, run.stderr
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"a", "b"} <= set(table["group"])
    acc = table[(table.metric == "balanced_accuracy") & (table.group == "overall")
                & (table.post == "none") & (table.k == 2)]["mean"]
    assert len(acc) == 2 and (acc > 0.65).all(), acc  # members learned the rule from vectors


# ----------------------------------------------------------------------------- standardising


def _config(tmp_path: Path, kind: str, **kw) -> TableData:
    args, _ = write_source(tmp_path, kind)
    vectors = {"embedding": args[2].split("=", 1)[1]} if kind == "npy" else {}
    return TableData(path=args[0], target="label", group="group", vectors=vectors, **kw)


def _rows(V: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Row numbers of the stored vectors ``V`` that the matrix ``X`` holds (by first element)."""
    where = {float(v): i for i, v in enumerate(V[:, 0])}
    return np.array([where[float(v)] for v in X[:, 0]])


@pytest.mark.parametrize("kind", ["list", "fixed", "npy"])
def test_prepared_features_are_the_stored_vectors_standardised_by_the_draw(tmp_path, kind):
    _, V = write_source(tmp_path, kind)
    ds = load_table(_config(tmp_path, kind), seed=3)
    assert ds.info["vector_features"] == {"embedding": [D]}
    train = ds.pool.take(np.random.default_rng(0).choice(len(ds.pool), 150, replace=False))
    Xtr, Xte = ds.prepare(train, [ds.test])
    block = slice(Xtr.shape[1] - D, None)  # the vector block comes after numeric features
    raw_tr = V[_rows(V, np.stack(train.X["embedding"].to_numpy()))]
    raw_te = V[_rows(V, np.stack(ds.test.X["embedding"].to_numpy()))]
    mean, std = raw_tr.astype(np.float64).mean(0), raw_tr.astype(np.float64).std(0)
    assert Xtr.dtype == np.float32 and Xtr.flags.c_contiguous
    assert np.allclose(Xtr[:, block], (raw_tr - mean) / std, atol=1e-5)
    assert np.allclose(Xte[:, block], (raw_te - mean) / std, atol=1e-5)  # the draw's stats
    assert not np.allclose(Xte[:, block].mean(0), 0, atol=1e-3)  # not the test split's own


def test_a_missing_vector_takes_the_draws_median_or_drops_the_row(tmp_path):
    V, y, g = embeddings()
    cells = list_array(V, "list").to_pylist()
    cells[5] = None  # a missing vector
    cells[9][2] = None  # a missing element
    pq.write_table(pa.table({"embedding": pa.array(cells, pa.list_(pa.float32())), "x": y * 0.5,
                             "label": y, "group": g}), tmp_path / "t.parquet")
    cfg = TableData(path=str(tmp_path / "t.parquet"), target="label", group="group")
    ds = load_table(cfg, seed=0)
    assert ds.info["missing_vectors"] == {"embedding": 2}
    pool = ds.pool
    Xpool = np.stack(pool.X["embedding"].to_numpy())
    (Xtr,) = ds.prepare(pool, [])
    filled = np.where(np.isnan(Xpool), np.nanmedian(Xpool, axis=0), Xpool).astype(np.float64)
    expected = (filled - filled.mean(0)) / filled.std(0)
    assert np.isfinite(Xtr).all()
    assert np.allclose(Xtr[:, 1:], expected, atol=1e-5)  # after the numeric column x
    dropped = load_table(cfg.model_copy(update={"impute": "drop"}), seed=0)
    assert dropped.info["rows_used"] == N - 2


def test_arrow_files_and_tensor_columns_are_vectors(tmp_path):
    V, y, g = embeddings()
    tensor = pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), [2, 4]),
                                            list_array(V, "fixed"))
    table = pa.table({"embedding": tensor, "label": y, "group": g})
    feather.write_feather(table, tmp_path / "t.feather")  # the Arrow IPC file format
    with pa.OSFile(str(tmp_path / "t.arrow"), "wb") as sink:  # the stream, as datasets writes
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    for name in ("t.feather", "t.arrow"):
        block = decode(read_table(tmp_path / name)["embedding"], "embedding", name)
        assert block.shape == (2, 4) and np.array_equal(block.matrix, V)  # row-major
    res = cli("init", "table", str(tmp_path / "t.arrow"), "--target", "label", "--group",
              "group", "--out", str(tmp_path / "t.yaml"))
    assert res.returncode == 0, res.stderr
    assert "embedding: 2x4 tensors -> 8 features" in res.stdout


def test_vectors_numbers_and_text_make_one_feature_matrix(tmp_path):
    V, y, g = embeddings()
    frame = pd.DataFrame({"x": np.arange(N, dtype=float), "colour": np.where(y, "red", "blue"),
                          "label": y, "group": g})
    frame["embedding"] = pd.Series(pd.arrays.ArrowExtensionArray(
        pa.chunked_array([list_array(V, "fixed")])))
    frame["meta"] = [{"source": "web"}] * N  # a struct column, left out with drop
    cfg = TableData(path="t.parquet", target="label", group="group", drop=["meta"])
    ds = assemble(frame, cfg, seed=0, source="t.parquet")
    assert (ds.info["numeric_features"], ds.info["categorical_features"]) == (["x"], ["colour"])
    (Xtr,) = ds.prepare(ds.pool, [])
    assert Xtr.shape == (len(ds.pool), 1 + 2 + D)
    # cells that are arrays of one length (a frame built in Python) are vectors too
    frame["embedding"] = list(V)
    ds2 = assemble(frame, cfg, seed=0, source="t.parquet")
    assert np.array_equal(ds2.prepare(ds2.pool, [])[0], Xtr)


def test_init_table_counts_and_sniffs_around_columns_of_dictionaries(tmp_path):
    V, y, g = embeddings()
    age = np.where(np.arange(N) % 40 == 0, "?", (np.arange(N) % 60).astype(str))  # '?': missing
    table = pa.table({"embedding": list_array(V, "list"), "meta": pa.array([{"k": "v"}] * N),
                      "age": age, "label": y, "group": g})
    pq.write_table(table, tmp_path / "t.parquet")
    res = cli("init", "table", str(tmp_path / "t.parquet"), "--target", "label", "--group",
              "group", "--drop", "meta", "--out", str(tmp_path / "t.yaml"))
    assert res.returncode == 0, res.stderr
    assert "features: numeric age; categorical -; vectors embedding" in res.stdout
    dataset = load_config(tmp_path / "t.yaml").dataset
    assert (dataset.drop, dataset.na_values) == (["meta"], ["?"])


# ----------------------------------------------------------------------------- one line


def _bad_parquet(folder: Path, column: pa.Array, where: str = "embedding") -> Path:
    _, y, g = embeddings()
    columns = {"embedding": pa.array(np.arange(N, dtype=float)), "label": y, "group": g}
    columns[where] = column
    pq.write_table(pa.table(columns), folder / "bad.parquet")
    return folder / "bad.parquet"


VARYING = pa.array([[1.0, 2.0, 3.0] if i != 6 else [1.0, 2.0] for i in range(N)])
NESTED = pa.array([[[1.0, 2.0], [3.0]] if i == 4 else [[1.0, 2.0], [3.0, 4.0]]
                   for i in range(N)])
BAD_COLUMNS = [
    ("varying length", "embedding", VARYING,
     "column 'embedding' holds lists of varying length (3 values in data row 1, 2 in data row 7)"),
    ("nested of varying length", "embedding", NESTED,
     "column 'embedding' holds nested lists of varying length"),
    ("structs", "embedding", pa.array([{"a": 1.0, "b": "x"}] * N),
     "column 'embedding' holds dictionaries (struct<a: double, b: string>)"),
    ("lists of text", "embedding", pa.array([["a", "b"]] * N),
     "column 'embedding' holds lists of text"),
    ("group of vectors", "group", list_array(np.ones((N, 3), np.float32), "list"),
     "group column 'group' holds vectors (lists of numbers); a group column holds one value"),
    ("target of vectors", "label", list_array(np.ones((N, 3), np.float32), "fixed"),
     "target column 'label' holds 3-dimensional vectors"),
]


@pytest.mark.parametrize("what, where, column, expected", BAD_COLUMNS,
                         ids=[b[0] for b in BAD_COLUMNS])
def test_a_column_that_cannot_be_vectors_is_one_line_in_init_and_in_run(tmp_path, what, where,
                                                                        column, expected):
    path = _bad_parquet(tmp_path, column, where)
    res = CliRunner().invoke(app, ["init", "table", str(path), "--target", "label", "--group",
                                   "group", "--out", str(tmp_path / "bad.yaml")])
    assert expected in one_line(res)
    assert not (tmp_path / "bad.yaml").exists()
    cfg = {"name": "bad", "dataset": {"kind": "table", "path": str(path), "target": "label",
                                      "group": "group"}, "ratio_group": "b", "train_size": 50}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["run", str(tmp_path / "run.yaml"), "--out",
                                   str(tmp_path / "r")])
    assert expected in one_line(res)


def test_lists_mixed_with_text_name_the_rows(tmp_path):
    V, y, g = embeddings()
    frame = pd.DataFrame({"embedding": [*V[:3], "n/a", *V[4:]], "label": y, "group": g})
    cfg = TableData(path="t.parquet", target="label", group="group")
    with pytest.raises(DataError, match=r"t.parquet: column 'embedding' holds a mix of lists "
                                        r"\(data row 1\) and text \(data row 4: 'n/a'\)"):
        assemble(frame, cfg, seed=0, source="t.parquet")


def _bad_npy(folder: Path, name: str) -> Path:
    V, _, _ = embeddings()
    arrays = {"short.npy": V[:-1], "flat.npy": V[:, 0], "text.npy": V.astype(str)}
    np.save(folder / name, arrays[name])
    return folder / name


BAD_NPY = [
    ("short.npy", "dataset.vectors.embedding: {path} holds 399 rows but {table} has 400; "
                  "expected one row per table row"),
    ("flat.npy", "dataset.vectors.embedding: {path} holds an array of shape (400,); expected a "
                 "[n_rows, d] matrix"),
    ("text.npy", "dataset.vectors.embedding: {path} holds <U"),
]


@pytest.mark.parametrize("name, expected", BAD_NPY, ids=[b[0] for b in BAD_NPY])
def test_a_npy_that_does_not_fit_the_table_is_one_line(tmp_path, name, expected):
    table = write_source(tmp_path, "npy")[0][0]
    npy = _bad_npy(tmp_path, name)
    res = CliRunner().invoke(app, ["init", "table", table, "--target", "label", "--group",
                                   "group", "--vectors", f"embedding={npy}"])
    assert expected.format(path=npy, table=table) in one_line(res)


def test_csv_cells_holding_vectors_as_text_point_to_parquet_or_npy(tmp_path):
    V, y, g = embeddings()
    text = ["[" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in V]
    pd.DataFrame({"embedding": text, "label": y, "group": g}).to_csv(tmp_path / "t.csv",
                                                                     index=False)
    res = CliRunner().invoke(app, ["init", "table", str(tmp_path / "t.csv"), "--target", "label",
                                   "--group", "group"])
    line = one_line(res)
    assert "column 'embedding' holds vectors written as text" in line
    assert "a CSV cannot hold vectors" in line and "dataset.vectors" in line
