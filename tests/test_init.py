"""Specifications of `fairensemble init`: a config proposed from data it has never seen."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from builders import make_celeba, make_chexpert
from conftest import run_cli
from typer.testing import CliRunner

from fairensemble.advice import scaffold
from fairensemble.cli import app
from fairensemble.config import load_config
from fairensemble.data import chexpert
from fairensemble.data.images import layout_rows
from fairensemble.data.sampling import (
    SamplingError,
    largest_train_size,
    mix_shares,
    plan_counts,
    readable_floor,
)
from fairensemble.sweep import load_for
from fairensemble.sweep.runner import data_seed

PEOPLE = {"north": 600, "south": 360, "islands": 40}


def make_people(path, sizes=PEOPLE, seed: int = 0, age_missing: str | None = None
                ) -> pd.DataFrame:
    """A table `init` has never seen: groups in `region` (islands rare), a yes/no `outcome`
    (yes about a third) that depends on a numeric `age` and a text `job`; blanks in every
    column, or ``age_missing`` written for a missing age. Written as CSV or Parquet by the
    suffix of ``path``."""
    rng = np.random.default_rng(seed)
    region = np.repeat(list(sizes), list(sizes.values()))
    n = len(region)
    age = rng.normal(40, 12, n).round()
    job = rng.choice(["clerk", "farmer", "nurse", "teacher"], n).astype(object)
    score = (age - 40) / 12 + (job == "nurse") + (region == "south") * 0.5 + rng.normal(0, .7, n)
    frame = pd.DataFrame({"age": age, "job": job, "region": region.astype(object),
                          "outcome": np.where(score > 0.8, "yes", "no").astype(object)})
    for column, k in (("age", 25), ("job", 20), ("region", 5), ("outcome", 5)):
        frame.loc[rng.choice(n, k, replace=False), column] = np.nan
    frame = frame.sample(frac=1, random_state=1)
    if age_missing is not None:
        frame["age"] = frame["age"].astype(str).where(frame["age"].notna(), age_missing)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """`init table` run once in a fresh folder, with no --out: (folder, CLI result)."""
    folder = tmp_path_factory.mktemp("people")
    make_people(folder / "people.csv", age_missing="?")
    res = run_cli("init", "table", "people.csv", "--target", "outcome", "--group", "region",
                  cwd=folder)
    return folder, res


def init(*args: str):
    """`fairensemble init ARGS` in this process (the CLI's own app); fails unless exit 0."""
    res = CliRunner().invoke(app, ["init", *args])
    assert res.exit_code == 0, res.output
    return res


def drawable(cfg, train_size: int, ratio: float) -> bool:
    """Whether `run`'s own sampler can allocate ``train_size`` at ``ratio`` on `run`'s pool."""
    ds = _loaded(cfg)
    rg = ds.groups.index(cfg.ratio_group)
    try:
        plan_counts(train_size, mix_shares(ratio, [rg], ds.pool.g, len(ds.groups)), ds.pool.y,
                    ds.pool.g, ds.groups, ds.n_classes, cfg.label_balance)
    except SamplingError:
        return False
    return True


_DATA: dict[str, object] = {}


def _loaded(cfg):
    key = cfg.dataset.model_dump_json()
    if key not in _DATA:
        _DATA[key] = load_for(cfg)
    return _DATA[key]


# ----------------------------------------------------------------------------- init table


def test_init_table_writes_stem_yaml_that_validates_with_the_inferred_values(people):
    folder, res = people
    assert res.returncode == 0, res.stderr
    cfg = load_config(folder / "people.yaml")
    ds = cfg.dataset
    assert (ds.kind, ds.target, ds.group) == ("table", "outcome", "region")
    assert ds.path == str((folder / "people.csv").resolve())  # runs from any directory
    assert ds.positive == "yes"  # the rarer of the two values
    # islands: ~40 rows, so ~12 test rows, ~4 of them 'yes'; alone in `other` it gains nothing
    assert ds.groups == ["north", "south"] and ds.min_group_size == 0
    assert cfg.ratio_group == "south"  # the smaller remaining group
    assert (ds.test_fraction, ds.val_fraction) == (0.3, 0.15)  # val: for post-processing
    assert ds.na_values == ["?"]  # the only text in the numeric `age` column
    assert cfg.ratios == [round(0.1 * i, 1) for i in range(11)]
    assert (cfg.replicates, cfg.ensemble.members, cfg.model.name) == (3, 20, "mlp")


def test_init_table_train_size_is_the_largest_every_ratio_can_draw(people):
    folder, _ = people
    cfg = load_config(folder / "people.yaml")
    t = cfg.train_size
    assert all(drawable(cfg, t, r) for r in cfg.ratios)
    # rounded down to two significant figures: one unit of the second figure more is too many
    step = 10 ** max(len(str(t)) - 2, 0)
    assert not (drawable(cfg, t + step, 0.0) and drawable(cfg, t + step, 1.0))
    south_pool = int((load_for(cfg).pool.g == 1).sum())
    assert t <= south_pool < t + step  # at ratio 1 the whole draw comes from south's pool


def test_init_table_summary_names_the_groups_counts_and_next_command(people):
    _, res = people
    for word in ("north", "south", "islands", "595", "356", "39", "'yes'", "dropped",
                 "missing values written as '?' (numeric columns age"):
        assert word in res.stdout, word
    assert "fairensemble run people.yaml" in res.stdout


def test_init_table_comments_say_why_each_value(people):
    folder, _ = people
    text = (folder / "people.yaml").read_text()
    comment = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert "islands (39 rows)" in comment  # what was dropped, with its size
    assert "'yes': an indicator's positive value" in comment  # why 'yes' is positive
    # 356 south rows x (1 - 0.3 - 0.15) = 195.8: the apportionment gives the pool 196
    assert "196 pool rows" in comment and "200 cannot be drawn" in comment  # why train_size
    assert "#   fairensemble init table people.csv --target outcome --group region" in text


def test_init_table_config_runs_end_to_end_unedited(people, tmp_path):
    folder, _ = people
    res = run_cli("run", str(folder / "people.yaml"), "--out", str(tmp_path / "run"),
                  "--set", "train.epochs=2", "--set", "ensemble.members=2",
                  "--set", "ensemble.k=[1,2]", "--set", "replicates=1")
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    assert {"north", "south"} <= set(table["group"]) and "islands" not in set(table["group"])
    assert sorted(table["ratio"].unique()) == pytest.approx([0.1 * i for i in range(11)])


def test_missing_markers_are_only_those_that_alone_make_a_numeric_column_text():
    frame = pd.DataFrame({
        "age": ["31", "?", "45", " ?", None],  # numbers apart from '?' (as written, spaces too)
        "income": ["1.5", "-", "2.0", "3", "4"],
        "job": ["unknown", "nurse", "?", "clerk", "nurse"],  # text anyway: left alone
        "code": ["01", "02", "03", "04", "05"],  # numbers as text, no marker
        "n": [1, 2, 3, 4, 5],
    })
    assert scaffold.missing_markers(frame) == {"age": [" ?", "?"], "income": ["-"]}


def test_tiny_groups_that_together_clear_the_bar_merge_into_other(tmp_path):
    # two 180-row groups, a third 'yes': ~54 test rows each, ~18 'yes' (< 30); together ~36
    sizes = {"big": 700, "mid": 400, "east": 180, "west": 180}
    make_people(tmp_path / "four.parquet", sizes)
    p = scaffold.propose_table(tmp_path / "four.parquet", "outcome", "region")
    ds = p.config["dataset"]
    assert ds["min_group_size"] == 200  # the roundest threshold in (east/west rows, mid rows]
    assert "groups" not in ds
    assert list(p.pool.groups) == ["big", "mid", "other"]
    assert p.config["ratio_group"] == "mid"  # the smallest group that is not the `other` bin
    path = tmp_path / "four.yaml"
    path.write_text(scaffold.render_yaml(p, str(path)))
    assert load_for(load_config(path)).groups == ["big", "mid", "other"]


def test_ratio_group_can_be_chosen_and_is_never_merged_away(tmp_path):
    make_people(tmp_path / "people.csv")
    p = scaffold.propose_table(tmp_path / "people.csv", "outcome", "region",
                               ratio_group="islands")
    assert p.config["ratio_group"] == "islands"
    assert "islands" in p.pool.groups  # kept, though its test split is thin
    assert p.train_size.value == p.pool.rows("islands")  # < 100: every row of its pool


def test_positive_class_rule():
    def counts(totals: dict[str, int]) -> scaffold.Counts:
        return scaffold.Counts(("g",), tuple(totals), np.array([list(totals.values())]))

    assert scaffold.pick_positive(counts({"<=50K": 300, ">50K": 100}))[0] == ">50K"
    # an indicator names its positive value, whichever is rarer
    assert scaffold.pick_positive(counts({"0": 40, "1": 60}))[0] == "1"
    assert scaffold.pick_positive(counts({"No": 70, "Yes": 30}))[0] == "Yes"
    assert scaffold.pick_positive(counts({"1": 700, "2": 300}))[0] == "2"  # not an indicator
    assert scaffold.pick_positive(counts({"a": 50, "b": 50}))[0] == "b"  # tie: sorting last
    assert scaffold.pick_positive(counts({"lo": 5, "mid": 5, "hi": 5}))[0] is None


def test_largest_train_size_comes_from_the_sampler_not_a_formula():
    # group 0: 90 negatives, 10 positives; group 1: 100 / 100
    y = np.r_[np.zeros(90), np.ones(10), np.zeros(100), np.ones(100)].astype(int)
    g = np.r_[np.zeros(100), np.ones(200)].astype(int)
    size = largest_train_size
    assert size(y, g, ["a", "b"], 2, [0], [0.5], "keep") == 100  # all of group 0 at ratio 1
    # equal classes per group: 11 + 10 positives fit in group 0's 10? no: 10 + 11, ties go to
    # class 0, so 21 fits and 22 (11 positives) does not
    assert size(y, g, ["a", "b"], 2, [0], [0.5], "balanced") == 21


def test_readable_numbers():
    assert readable_floor(10_771) == (10_000, 1_000)
    assert readable_floor(249) == (240, 10)
    assert readable_floor(8) == (8, 1)
    assert scaffold.readable_between(470, 1_519) == 500
    assert scaffold.readable_between(120, 400) == 200
    assert scaffold.readable_between(99, 100) == 100


# ----------------------------------------------------------------------------- bad input


BAD = [
    ("missing file", ["nope.csv", "--target", "outcome", "--group", "region"], "nope.csv"),
    ("missing column", ["people.csv", "--target", "outcom", "--group", "region"],
     "target column 'outcom' not found; did you mean 'outcome'?"),
    ("one class", ["oneclass.csv", "--target", "outcome", "--group", "region"],
     "target column 'outcome' has one class ('no')"),
    ("one group", ["onegroup.csv", "--target", "outcome", "--group", "region"],
     "group column 'region' has one group ('north')"),
    ("absent positive", ["people.csv", "--target", "outcome", "--group", "region",
                         "--positive", "maybe"], "positive value 'maybe' not found"),
    ("unreadable file", ["garbage.csv", "--target", "outcome", "--group", "region"],
     "garbage.csv: cannot be read as a table"),
    ("existing output", ["people.csv", "--target", "outcome", "--group", "region",
                         "--out", "taken.yaml"], "taken.yaml: already exists; pass --force"),
]


@pytest.fixture
def bad_inputs(tmp_path, monkeypatch):
    frame = make_people(tmp_path / "people.csv")
    frame.assign(outcome="no").to_csv(tmp_path / "oneclass.csv", index=False)
    frame.assign(region="north").to_csv(tmp_path / "onegroup.csv", index=False)
    (tmp_path / "garbage.csv").write_bytes(b"\x00\x01garbage\xff\xfe")
    (tmp_path / "taken.yaml").write_text("name: mine\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("what, args, expected", BAD, ids=[b[0] for b in BAD])
def test_bad_table_input_exits_2_with_one_line_naming_it(bad_inputs, what, args, expected):
    res = CliRunner().invoke(app, ["init", "table", *args])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)  # handled: no other exception escaped
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], res.stderr
    assert (bad_inputs / "taken.yaml").read_text() == "name: mine\n"
    assert not (bad_inputs / "people.yaml").exists()


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path):
    make_people(tmp_path / "people.csv")
    res = run_cli("init", "table", "people.csv", "--target", "outcome", "--group", "Region",
                  cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        "error: people.csv: group column 'Region' not found; did you mean 'region'? "
        "(columns: age, job, region, outcome)"]


# ----------------------------------------------------------------------------- Adult, images


def test_init_adult_by_sex_sweeps_women_at_10000(tmp_path):
    init("adult", "--out", str(tmp_path / "a.yaml"))  # no folder: the bundled copy
    cfg = load_config(tmp_path / "a.yaml")
    assert (cfg.dataset.kind, cfg.dataset.group, cfg.ratio_group) == ("adult", "sex", "Female")
    assert cfg.dataset.root is None
    # adult.data holds 10,771 women: the draw at ratio 1; 11,000 would not fit
    assert cfg.train_size == 10_000
    assert drawable(cfg, 10_000, 1.0) and not drawable(cfg, 11_000, 1.0)


def test_init_adult_by_race_merges_the_two_smallest_groups(tmp_path):
    p = scaffold.propose_adult(None, "race")
    ds = p.config["dataset"]
    # Amer-Indian-Eskimo (470 rows, 19 >50K in adult.test) and Other (406, 25): together 44
    assert ds["min_group_size"] == 500
    assert list(p.pool.groups) == ["White", "Black", "Asian-Pac-Islander", "other"]
    assert p.config["ratio_group"] == "Asian-Pac-Islander"  # 1,039 pool rows
    assert p.config["train_size"] == 1_000
    (tmp_path / "race.yaml").write_text(scaffold.render_yaml(p, "race.yaml"))
    assert load_config(tmp_path / "race.yaml").dataset.min_group_size == 500


def test_init_celeba_reads_the_label_files_and_proposes_a_gpu_config(tmp_path):
    root = make_celeba(tmp_path / "celeba", n=48)
    res = init("celeba", str(root), "--out", str(tmp_path / "c.yaml"))
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.dataset.kind, cfg.dataset.target, cfg.dataset.image_size) == (
        "celeba", "Blond_Hair", 224)
    assert cfg.model.name == "resnet50"
    assert cfg.train_size == 8  # the official train split holds 8 images of each group
    assert "GPU" in res.stdout and "--set model.name=resnet18" in res.stdout
    assert "--set train_size=8" in (tmp_path / "c.yaml").read_text()


def test_init_chexpert_reads_the_csvs_and_proposes_a_gpu_config(tmp_path):
    root = make_chexpert(tmp_path / "chex", n_patients=20)
    res = init("chexpert", str(root), "--out", str(tmp_path / "x.yaml"))
    cfg = load_config(tmp_path / "x.yaml")
    assert (cfg.dataset.kind, cfg.dataset.target, cfg.model.name) == (
        "chexpert", "Lung Opacity", "resnet50")
    table, _ = chexpert.read_table(cfg.dataset)  # what `run` splits, as `run` splits it
    rows = layout_rows(table, chexpert.as_images(cfg.dataset), data_seed(cfg), "chexpert")
    pool = pd.Series(rows.g[rows.parts["pool"]]).value_counts()
    assert cfg.train_size == pool.min()  # under 100: the smaller group's whole pool
    assert cfg.ratio_group == cfg.dataset.groups[pool.idxmin()]
    assert "Sex=Unknown (8)" in res.stdout  # the dropped rows are counted


# ----------------------------------------------------------------------------- intersectional


def make_people_by_race_and_sex(path, n: int = 4000, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    race = rng.choice(["African-American", "Caucasian", "Hispanic"], n, p=[0.45, 0.4, 0.15])
    sex = rng.choice(["Female", "Male"], n, p=[0.35, 0.65])
    age = rng.integers(18, 70, n)
    score = -0.03 * (age - 40) + (sex == "Male") * 0.4 + rng.normal(0, 1, n)
    pd.DataFrame({"age": age, "race": race, "sex": sex,
                  "reoffend": np.where(score > 0.4, "yes", "no")}).to_csv(path, index=False)


def test_two_group_columns_make_intersectional_groups_that_run_and_are_named(tmp_path):
    make_people_by_race_and_sex(tmp_path / "people.csv")
    init("table", str(tmp_path / "people.csv"), "--target", "reoffend", "--group", "race",
         "--group", "sex", "--out", str(tmp_path / "p.yaml"))
    cfg = load_config(tmp_path / "p.yaml")
    assert cfg.dataset.group == ["race", "sex"]
    assert cfg.ratio_group == "Hispanic"  # the race with the fewest rows; both sexes move
    res = run_cli("run", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "run"),
                  "--set", "ensemble.members=2", "--set", "replicates=1",
                  "--set", "train.epochs=3", "--set", "ratios=[0.0,0.5,1.0]")
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(tmp_path / "run" / "metrics.parquet")
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    layout = plan["layouts"][0]
    assert layout["attributes"] == ["race", "sex"]
    # the metrics name the combinations, e.g. 'Hispanic & Male'
    assert {"Hispanic & Male", "Caucasian & Male"} <= set(layout["groups"]) <= set(table["group"])
    hispanic = [i for i, v in enumerate(layout["group_values"]) if v[0] == "Hispanic"]
    for shares, cell_ratio in zip(layout["shares"], (0.0, 0.5, 1.0)):
        # the moved value's combinations take the share together ...
        assert sum(shares[i] for i in hispanic) == pytest.approx(cell_ratio)
        others = [s for i, s in enumerate(shares) if i not in hispanic]
        if cell_ratio < 1:  # ... and the other groups keep their pool proportions
            sizes = np.bincount(load_for(cfg).pool.g, minlength=len(layout["groups"]))
            pool = np.array([n for i, n in enumerate(sizes) if i not in hispanic], dtype=float)
            assert np.allclose(np.array(others) / sum(others), pool / pool.sum(), atol=1e-9)
