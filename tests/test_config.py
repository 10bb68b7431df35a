"""Config loading: defaults, overrides, grid expansion and one-line errors naming the field."""

import pytest

from fairensemble import ConfigError
from fairensemble.config import load_config


def test_defaults_match_the_paper_setup():
    cfg = load_config(None)
    assert cfg.dataset.kind == "synthetic"
    assert cfg.ratios == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert cfg.ensemble.members == 20
    assert cfg.ks() == [1, 2, 3, 5, 10, 20]


def test_overrides_are_parsed_as_yaml():
    cfg = load_config(None, ["dataset.label_noise=0.25", "model.hidden=[8, 8]",
                             "train.early_stopping={patience: 3}", "name=x"])
    assert cfg.dataset.label_noise == 0.25
    assert cfg.model.hidden == [8, 8]
    assert cfg.train.early_stopping.patience == 3
    assert cfg.name == "x"


def test_grid_points_are_the_cartesian_product_and_apply_to_the_config():
    cfg = load_config(None, ["grid={dataset.label_noise: [0.0, 0.3], train.lr: [0.01, 0.1, 1]}"])
    points = cfg.grid_points()
    assert len(points) == 6
    at = cfg.at(points[-1])
    assert at.dataset.label_noise == 0.3 and at.train.lr == 1 and at.grid == {}


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["bogus=1"], "bogus: unknown key"),
        (["dataset.bogus=1"], "dataset.bogus: unknown key"),
        (["ratios=[0.5, 1.5]"], "ratios[1]: input should be less than or equal to 1"),
        (["ratios=[-0.1]"], "ratios[0]: input should be greater than or equal to 0"),
        (["train_size=0"], "train_size: input should be greater than 0"),
        (["train_size=-5"], "train_size: input should be greater than 0"),
        (["dataset.pool_size=0"], "dataset.pool_size: input should be greater than 0"),
        (
            ["dataset.label_noise=0.6"],
            "dataset.label_noise: input should be less than or equal to 0.5",
        ),
        (["ensemble.k=[1, 40]"], "ensemble.k: every k must be <= ensemble.members (20)"),
        (["dataset.kind=nope"], "dataset.kind: expected one of synthetic"),
        (["dataset.hard_group=X"], "dataset.hard_group: expected one of"),
        (
            ["grid={dataset.label_noise: [0.1, 0.9]}"],
            "grid.dataset.label_noise=0.9: dataset.label_noise",
        ),
        (["grid={dataset.nothing: [1]}"], "grid.dataset.nothing: not a config field"),
        (["model.name=gpt"], "model.name: expected one of"),
        (
            ["train.diversity=[init, dropout]"],
            "train.diversity: expected distinct names from ['init', 'order', 'bootstrap',"
            " 'augment'], got ['init', 'dropout']",
        ),
        (["train.diversity=[order, order]"], "train.diversity: expected distinct names from"),
        (["train.diversity=init"], "train.diversity: expected distinct names from"),
        (["model.weights=r.pth"], "model.weights: pretrained weights load into image models"),
        (["model.name=cnn", "model.weights="], "model.weights: string should have at least 1"),
    ],
)
def test_bad_values_name_the_field(overrides, expected):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    message = str(err.value)
    assert expected.lower() in message.lower()
    assert "\n" not in message


def test_diversity_is_a_set_written_in_one_order_so_equal_sets_are_equal_cells():
    assert load_config(None).train.diversity == ["init", "order", "augment"]
    cfg = load_config(None, ["train.diversity=[bootstrap, init]"])
    assert cfg.train.diversity == ["init", "bootstrap"]
    assert load_config(None, ["train.diversity=[]"]).train.diversity == []


def test_pretrained_weights_belong_to_image_models():
    cfg = load_config(None, ["model.name=resnet18", "model.weights=in1k.pth",
                             "model.freeze_norm=true"])
    assert cfg.model.weights == "in1k.pth" and cfg.model.freeze_norm is True
    assert load_config(None).model.weights is None


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_shipped_configs_validate():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")):
        load_config(path)


def test_every_config_field_documents_itself():
    """The configuration reference is generated from the fields' docstrings: a field without
    one would be a hole in it."""
    from pydantic import BaseModel

    from fairensemble.config import RunConfig
    from fairensemble.data import sources

    missing, seen = [], set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            for arg in getattr(field.annotation, "__args__", ()) + (field.annotation,):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    walk(arg, f"{prefix}{name}.")

    walk(RunConfig, "")
    for kind, source in sources().items():
        walk(source.config, f"dataset[{kind}].")
    assert not missing, missing
