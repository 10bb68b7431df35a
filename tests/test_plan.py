"""Cell identity: what makes two cells the same cell (and so never trained twice)."""

from __future__ import annotations

from fairensemble.config import validate
from fairensemble.sweep import CELL_FORMAT, PointLayout, build_plan
from fairensemble.sweep.plan import cell_identity

TABLE = {"name": "t", "seed": 5, "ratio_group": "a", "ratios": [0.25, 0.5], "train_size": 40,
         "replicates": 2, "dataset": {"kind": "table", "path": "t.csv", "target": "y",
                                      "group": "g"},
         "ensemble": {"members": 3}, "executor": {"kind": "serial"}}


def layout(ratio_group: str = "a", shares=((0.25, 0.75), (0.5, 0.5))) -> PointLayout:
    return PointLayout(groups=["a", "b"], classes=["0", "1"], ratio_group=ratio_group,
                       shares=[list(s) for s in shares], counts=[[[5, 5], [15, 15]]] * 2)


def ids(changes: dict | None = None, lay: PointLayout | None = None) -> list[str]:
    data = {**TABLE, **(changes or {})}
    return [c.id for c in build_plan(validate(data), [lay or layout()]).cells]


def with_dataset(**fields) -> dict:
    return {"dataset": {**TABLE["dataset"], **fields}}


def test_every_cell_of_a_plan_has_its_own_id_and_the_same_config_gives_the_same_ids():
    first = ids()
    assert len(set(first)) == 4 and ids() == first


def test_what_trains_differently_is_another_cell():
    base = ids()
    for changes in ({"seed": 6}, {"train_size": 41}, {"ensemble": {"members": 4}},
                    {"train": {"epochs": 7}}, {"model": {"hidden": [8]}},
                    with_dataset(val_fraction=0.1), with_dataset(na_values=["?"])):
        assert set(ids(changes)).isdisjoint(base), changes


def test_what_does_not_change_the_numbers_keeps_the_cells():
    base = ids()
    # evaluation, the executor and the device are outside the identity
    assert ids({"ensemble": {"members": 3, "k": [1, 3], "draws": 7}, "metrics": ["accuracy"],
                "primary_metric": "accuracy", "executor": {"kind": "local", "workers": 2},
                "train": {"device": "cpu"}}) == base
    # the same shares with the other group named as the one that moves: the same cells
    swapped = layout("b", shares=((0.25, 0.75), (0.5, 0.5)))
    assert ids({"ratio_group": "b"}, swapped) == base


def test_the_identity_carries_the_cell_format():
    identity = cell_identity(validate(TABLE), layout(), 0, 0)
    assert identity["format"] == CELL_FORMAT == 3


FACTORY = """import torch.nn as nn


def make(num_classes):
    return nn.Linear(4, num_classes)
"""


def test_a_factorys_source_is_part_of_the_identity_so_editing_it_never_reuses_cells(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(FACTORY)
    model = {"model": {"name": f"{path}:make"}}
    first = ids(model)
    assert ids(model) == first  # the same file: the same cells
    path.write_text(FACTORY + "# a comment changes the file\n")
    edited = ids(model)
    assert set(edited).isdisjoint(first)
    identity = cell_identity(validate({**TABLE, **model}), layout(), 0, 0)
    assert len(identity["model"]["factory"]["sha256"]) == 64


def test_the_declared_field_kinds_hold_for_cells_evaluations_and_report_set():
    from fairensemble import ConfigError
    from fairensemble.config import EVALUATION_FIELDS, RUNTIME_FIELDS, check_evaluation_overrides
    from fairensemble.evaluation import EvalSpec

    images = {**TABLE, "dataset": {"kind": "celeba", "root": "r"}}
    changes = {  # one change under every declared field
        "metrics": {"metrics": ["accuracy", "auc"]},
        "primary_metric": {"primary_metric": "balanced_accuracy"},
        "ensemble.k": {"ensemble": {"members": 3, "k": [1, 3]}},
        "ensemble.draws": {"ensemble": {"members": 3, "draws": 9}},
        "test_mix": {"test_mix": "natural"},
        "analysis": {"analysis": {"ci": "bootstrap"}},
        "executor": {"executor": {"kind": "local", "workers": 3}},
        "name": {"name": "other"},
        "dataset.cache_dir": {"dataset": {**images["dataset"], "cache_dir": "/tmp/c"}},
        "dataset.num_workers": {"dataset": {**images["dataset"], "num_workers": 4}},
        "train.device": {"train": {"device": "cpu"}},
    }
    assert set(changes) == {*EVALUATION_FIELDS, *RUNTIME_FIELDS}
    for field, change in changes.items():
        base = images if field.startswith("dataset.") else TABLE
        before, after = validate(base), validate({**base, **change})
        # no declared field changes what a cell trains
        assert cell_identity(after, layout(), 0, 0) == cell_identity(before, layout(), 0, 0), field
        same_spec = EvalSpec.of(after).hash == EvalSpec.of(before).hash
        # a cell's evaluation follows every evaluation field but the summary's ranking one
        assert same_spec == (field in RUNTIME_FIELDS or field == "primary_metric"), field
        check_evaluation_overrides([f"{field}=1"])  # `report --set` takes it
    for trained in ("seed", "train.epochs", "model.hidden", "dataset.path", "train_size"):
        try:
            check_evaluation_overrides([f"{trained}=1"])
        except ConfigError as err:
            assert trained in str(err)
        else:
            raise AssertionError(f"report --set {trained} should be refused")
