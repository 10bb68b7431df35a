"""Specifications of the one table reader (`table`, `images` and `init` share it): delimiters,
headers, extensions, compression, Parquet shards; and `init table` on a headerless file."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pandas as pd
import pytest
import yaml
from builders import make_german
from conftest import cli, run_cli

from fairensemble import DataError
from fairensemble.data.reader import read_table, sniff

ROWS = [["age", "job", "city", "label"], ["31", "nurse", "Le Mans", "yes"],
        ["45", "clerk", "Paris", "no"], ["27", "farmer", "Lyon", "no"]]


def write(path: Path, delimiter: str, header: bool = True, opener=open) -> Path:
    rows = ROWS if header else ROWS[1:]
    text = "\n".join(delimiter.join(f'"{c}"' if delimiter == " " and " " in c else c
                                    for c in r) for r in rows) + "\n"
    with opener(path, "wt") as fh:
        fh.write(text)
    return path


@pytest.mark.parametrize("name, delimiter", [
    ("t.csv", ","), ("t.tsv", "\t"), ("t.txt", ";"), ("t.data", "|"), ("t.dat", ","),
])
def test_the_delimiter_is_sniffed_whatever_the_extension(tmp_path, name, delimiter):
    frame = read_table(write(tmp_path / name, delimiter))
    assert list(frame.columns) == ROWS[0]
    assert frame["city"].tolist() == ["Le Mans", "Paris", "Lyon"]  # spaces inside a field
    assert frame["age"].tolist() == [31, 45, 27]


def test_whitespace_separated_files_without_a_header_are_numbered_one_to_n(tmp_path):
    path = tmp_path / "plain.data"
    path.write_text("A11 6 A34 1169 1\nA12 48 A32 5951 2\nA14 12 A34 2096 1\n")
    assert sniff(path) == (None, False)
    frame = read_table(path)
    assert list(frame.columns) == ["1", "2", "3", "4", "5"]
    assert frame["4"].tolist() == [1169, 5951, 2096]
    named = read_table(path, columns=["status", "months", "history", "amount", "risk"])
    assert named["months"].tolist() == [6, 48, 12]
    with pytest.raises(DataError, match="dataset.columns: 2 names given but .* has 5 columns"):
        read_table(path, columns=["a", "b"])


def test_a_header_of_text_over_text_columns_is_kept_and_can_be_overridden(tmp_path):
    path = write(tmp_path / "t.csv", ",")
    assert sniff(path) == (",", True)
    assert list(read_table(path, header=False).columns) == ["1", "2", "3", "4"]
    no_header = write(tmp_path / "n.csv", ",", header=False)
    assert sniff(no_header) == (",", False)  # '31' heads a column of numbers: data
    assert list(read_table(no_header).columns) == ["1", "2", "3", "4"]


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open)])
def test_compressed_text_is_read_and_sniffed(tmp_path, suffix, opener):
    frame = read_table(write(tmp_path / f"t.tsv{suffix}", "\t", opener=opener))
    assert frame.shape == (3, 4) and frame["label"].tolist() == ["yes", "no", "no"]


def test_a_folder_of_parquet_shards_is_read_in_name_order(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    pd.DataFrame({"x": [3, 4]}).to_parquet(folder / "train-00001-of-00002.parquet")
    pd.DataFrame({"x": [1, 2]}).to_parquet(folder / "train-00000-of-00002.parquet")
    assert read_table(folder)["x"].tolist() == [1, 2, 3, 4]
    pd.DataFrame({"y": [5]}).to_parquet(folder / "train-00002-of-00002.parquet")
    with pytest.raises(DataError, match="shard 3 has columns"):
        read_table(folder)


def test_unreadable_inputs_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00garbage")
    for path, expected in ((tmp_path / "none.csv", "none.csv: file not found"),
                           (tmp_path / "b.csv", "b.csv: cannot be read as a table"),
                           (tmp_path, r"a folder without \*\.parquet files")):
        with pytest.raises(DataError, match=expected) as err:
            read_table(path)
        assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def german(tmp_path_factory) -> Path:
    return make_german(tmp_path_factory.mktemp("german") / "german.data")


@pytest.mark.parametrize("header_flag", [["--header", "none"], []], ids=["--header none",
                                                                         "sniffed"])
def test_init_table_on_german_data_writes_a_config_that_runs_unedited(german, tmp_path,
                                                                      header_flag):
    res = cli("init", "table", str(german), "--target", "21", "--group", "9", *header_flag,
              "--out", str(tmp_path / "german.yaml"))
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load((tmp_path / "german.yaml").read_text())
    ds = cfg["dataset"]
    assert (ds["header"], ds["target"], ds["group"], ds["positive"]) == (False, "21", "9", "2")
    assert "no header line: columns are numbered 1..21" in res.stdout
    if header_flag:
        return  # the run itself once is enough
    run = run_cli("run", str(tmp_path / "german.yaml"), "--out", str(tmp_path / "run"),
                  "--set", "ensemble.members=3", "--set", "replicates=2",
                  "--set", "train.epochs=20")
    assert run.returncode == 0, run.stderr
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"A92", "A93"} <= set(table["group"])
