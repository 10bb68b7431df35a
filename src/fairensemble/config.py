"""Validated configuration of a run: YAML in, pydantic models, resolved YAML out.

The run's sections live here, each field with its range; every data source declares its own
``dataset`` section in ``data/<source>.py`` and the union of them is built from the source
registry, as model names come from the model registry. Validation happens once, at load time,
and a failure is reported as one line naming the field (``ConfigError``).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from fairensemble import models
from fairensemble.common.errors import ConfigError
from fairensemble.common.schema import Fraction, NonNegativeInt, PositiveInt, Strict
from fairensemble.common.seeds import DIVERSITY_SOURCES
from fairensemble.data import sources
from fairensemble.data.text import TokenOptions
from fairensemble.metrics import get as metric_spec
from fairensemble.metrics import names as metric_names

# Which fields change what, declared once: the cell identity (plan.py), the evaluation spec
# and its cache (evaluation.py) and what `report --set` accepts (cli.py) derive from these.
# Every other field changes what is trained.
# fields that change how stored cells are evaluated or summarised, never what they trained
EVALUATION_FIELDS = ("metrics", "primary_metric", "ensemble.k", "ensemble.draws", "test_mix",
                     "analysis")
# fields that change no number at all: where and how a run executes, what it is called, where
# decoded images are cached and how many processes decode them, which device trains
RUNTIME_FIELDS = ("executor", "name", "dataset.cache_dir", "dataset.num_workers",
                  "train.device")


def _rankable(metric: str) -> bool:
    """A metric optima and verdicts can use: per group, with a better direction."""
    try:
        spec = metric_spec(metric)
    except ValueError:
        return False
    return spec.scope == "group" and spec.direction != "neither"


# ----------------------------------------------------------------------------- datasets

# one section per registered data source (data/<source>.py declares it), told apart by `kind`
_SOURCES = sources()
DatasetConfig = Annotated[Union[tuple(s.config for s in _SOURCES.values())],  # noqa: UP007
                          Field(discriminator="kind")]
DATASET_KINDS = ("synthetic", *sorted(k for k in _SOURCES if k != "synthetic"))  # default first
SyntheticData = _SOURCES["synthetic"].config  # the default dataset

# ----------------------------------------------------------------------------- model & training


class ModelConfig(Strict):
    """What every member is: an MLP, a built-in image model, or a factory of your own."""

    name: str = "mlp"
    """A built-in model (``mlp``; ``bag`` for texts; ``cnn``, ``resnet18``/``34``/``50``,
    ``vit_tiny``, ``vit_small`` for images) or a factory ``package.module:function`` /
    ``path/to/file.py:function``."""
    hidden: list[PositiveInt] = [64, 64]
    """Hidden layer widths of the MLP (and of ``bag``'s head)."""
    activation: Literal["relu", "tanh", "gelu", "leaky_relu"] = "relu"
    """The MLP's activation."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Dropout rate, where the model has dropout (the stacked MLP trainer supports 0 only)."""
    width: PositiveInt = 32
    """Base channel width of the small CNN; the embedding width of the bag model."""
    weights: Annotated[str, Field(min_length=1)] | None = None
    """A state dict in torchvision's / timm's key layout (``.pth``, ``.pt`` or
    ``.safetensors``) every member starts from; the head is kept when it has the task's class
    count."""
    freeze_norm: bool = False
    """Batch norm in eval mode while training: keeps the loaded statistics."""
    freeze: Literal["none", "backbone"] = "none"
    """``backbone``: the model's features are computed once per run and the members are heads
    (stacked MLPs with ``head_hidden`` layers) trained on them."""
    head_hidden: list[PositiveInt] = []
    """Hidden layer widths of the heads over frozen features and of the bag model's head
    (none: a linear head)."""

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return models.check_name(v)

    @model_validator(mode="after")
    def _weights_fit_an_image_model(self) -> ModelConfig:
        if self.weights is not None and self.name in ("mlp", "bag"):
            raise ValueError(
                "model.weights: pretrained weights load into image models (cnn, resnet18/34/50,"
                " vit_tiny, vit_small or a factory), got model.name 'mlp'"
            )
        if self.freeze == "backbone" and self.name in ("mlp", "bag"):
            raise ValueError("model.freeze: 'backbone' freezes an image model's backbone, got "
                             "model.name 'mlp' (which has none)")
        return self

    @property
    def stacked(self) -> bool:
        """Whether members train stacked (all of a unit's members as one tensor program):
        MLPs, the bag model, and heads over frozen features."""
        return self.name in ("mlp", "bag") or self.freeze == "backbone"

    def head(self) -> ModelConfig:
        """The MLP a member is when the backbone is frozen (its input: the features)."""
        return ModelConfig(name="mlp", hidden=list(self.head_hidden),
                           activation=self.activation)


class EarlyStopping(Strict):
    """Stop a member when its validation score has not improved for ``patience`` epochs and
    keep its best epoch."""

    patience: PositiveInt = 10
    """Epochs without improvement before a member stops."""
    metric: Literal["loss", "accuracy", "auc"] = "loss"
    """What the validation score is."""
    val_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """Share of a member's training rows held out to score it, when the data have no val
    split (each member holds out its own rows)."""


class TrainConfig(Strict):
    """How every member trains."""

    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """The optimiser (torch's, element-wise, so a stack of members is independent
    optimisers)."""
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    """Learning rate (at the start of the schedule)."""
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    """Weight decay (L2 for adam and sgd, decoupled for adamw)."""
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    """SGD's momentum."""
    epochs: PositiveInt = 100
    """Passes over each member's training rows."""
    batch_size: PositiveInt = 128
    """Rows per mini-batch."""
    schedule: Literal["constant", "cosine", "step"] = "constant"
    """Learning-rate schedule per epoch (torch's schedulers)."""
    step_size: PositiveInt = 30
    """``step`` schedule: epochs between decays."""
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    """``step`` schedule: the decay factor."""
    early_stopping: EarlyStopping | None = None
    """Stop members early on a validation score (none: train every epoch)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where members train; ``auto`` takes CUDA when there is one."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """``bf16``: autocast to bfloat16 (CPU and CUDA) with channels-last memory for
    convolutional nets; for the loop trainer and for computing frozen features (the stacked
    MLP trainer stays fp32)."""
    save_models: bool = False
    """Write every member's weights into the run directory (``models/<cell>/``)."""
    mitigation: Literal["none", "reweight", "balanced", "group_dro"] = "none"
    """A change to training that targets the gap: ``reweight`` (each sample weighted inversely
    to its group x class cell's frequency, mean 1), ``balanced`` (mini-batches with equal
    group x class counts, drawn with replacement), ``group_dro`` (online Group DRO over the
    group x class cells, each member with its own weights). A grid axis like any other."""
    dro_step: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    """``group_dro``: the step size of the exponentiated-gradient update of the cell weights."""
    dro_adjust: Annotated[float, Field(ge=0.0)] = 0.0
    """``group_dro``: Sagawa et al.'s generalization adjustment C (a cell's loss counts
    C / sqrt(its training rows) more); 0 turns it off."""
    diversity: list[str] = ["init", "order", "augment"]
    """Where members of a cell differ: ``init`` (initial weights), ``order`` (mini-batch
    order), ``bootstrap`` (a resample of the training rows), ``augment`` (image flips). A
    source left out is shared: every member uses member 0's stream."""

    @field_validator("diversity", mode="before")
    @classmethod
    def _sources(cls, v: Any) -> list[str]:
        """Distinct known names, put in the canonical order so that the same set gives the
        same cell identity however it is written."""
        known = isinstance(v, list) and all(isinstance(s, str) and s in DIVERSITY_SOURCES
                                            for s in v)
        if not known or len(set(v)) != len(v):
            raise ValueError(
                f"train.diversity: expected distinct names from {list(DIVERSITY_SOURCES)},"
                f" got {v!r}"
            )
        return [s for s in DIVERSITY_SOURCES if s in v]


K_LADDER = (1, 2, 3, 5, 10, 20, 50, 100)


class EnsembleConfig(Strict):
    """How many members each cell trains and which ensembles of them are scored."""

    members: PositiveInt = 20
    """Members per cell (E)."""
    k: list[PositiveInt] | None = None
    """Ensemble sizes to score (default: 1, 2, 3, 5, 10, 20, 50, 100 up to ``members``; 1 and
    E always)."""
    draws: PositiveInt = 50
    """Random k-of-E member subsets averaged per ensemble size (all of them when fewer
    exist)."""

    def sizes(self) -> list[int]:
        """The ensemble sizes to evaluate: configured (or default) ks plus 1 and E, sorted."""
        ks = self.k if self.k is not None else [k for k in K_LADDER if k <= self.members]
        return sorted({*ks, 1, self.members})


class ExecutorConfig(Strict):
    """Where the training units run; the numbers are the same whichever runs them."""

    kind: Literal["serial", "local", "ray"] = "local"
    """``serial`` (this process), ``local`` (a pool of processes) or ``ray`` (a Ray
    cluster, or a local Ray instance)."""
    workers: PositiveInt = 2
    """``local``: the pool size; ``ray`` with a local instance: its CPUs are workers x
    ``cpus_per_unit``."""
    threads: PositiveInt | None = None
    """Torch threads per unit (default: cores / workers for ``local``, ``cpus_per_unit`` for
    ``ray``). Image models on CPU give bitwise-identical numbers for the same count only."""
    address: str | None = None
    """``ray``: none starts a local instance; ``auto`` or ``ray://host:port`` joins one."""
    cpus_per_unit: Annotated[float, Field(gt=0.0)] = 1.0
    """``ray``: CPUs each unit asks for."""
    gpus_per_unit: Annotated[float, Field(ge=0.0)] = 0.0
    """``ray``: GPUs each unit asks for (fractions share a GPU)."""
    max_retries: NonNegativeInt = 3
    """``ray``: retries of a unit whose worker died."""


class AnalysisConfig(Strict):
    """How results are summarised; none of it changes what is trained."""

    ci: Literal["replicates", "bootstrap"] = "replicates"
    """95 % intervals: t-intervals over replicates, or a seeded bootstrap over test samples
    (which also works with one replicate)."""
    n_boot: Annotated[int, Field(ge=20)] = 200
    """Bootstrap resamples."""
    post: list[Literal["threshold_eo", "threshold_dp"]] = ["threshold_eo", "threshold_dp"]
    """Group-specific thresholds fitted on the validation split (binary tasks with a val
    split): equalized odds, demographic parity."""
    tolerance: Annotated[float, Field(ge=0.0)] = 0.0
    """How much of the overall metric a lever may cost: a setting that lowers it by more
    does not count as closing the gap (the levers' table, ``recommend --cost``)."""


class RunConfig(Strict):
    """A run: the data, the mixes swept, the model, its training, the ensembles scored, where
    it runs and how it is summarised."""

    name: str = "run"
    """The run's name (its default directory is ``runs/<name>``)."""
    seed: NonNegativeInt = 0
    """The run seed every random stream derives from."""
    dataset: DatasetConfig = Field(default_factory=SyntheticData)
    """The data: one section per ``kind`` (see the data sources)."""
    ratio_group: str | None = None
    """The group whose share of the training set ``ratios`` sweeps (default: the synthetic
    hard group, else the last group); with intersectional groups, a value of the first
    attribute."""
    ratios: list[Fraction] = [round(0.1 * i, 1) for i in range(11)]
    """Shares of ``ratio_group`` in the training set; the other groups share the rest in
    their pool proportions."""
    mixes: list[dict[str, Fraction]] | None = None
    """Explicit mixes instead of ``ratios``: a share per group, summing to 1."""
    train_size: PositiveInt = 2000
    """Rows in every training set (the same at every mix)."""
    label_balance: Literal["keep", "balanced"] = "keep"
    """Classes within each group of a training set: as in the pool, or equal."""
    replicates: PositiveInt = 3
    """Independent training draws (and member seeds) per mix."""
    grid: dict[str, list[Any]] = {}
    """Other fields to sweep, crossed with the mixes: ``{dataset.label_noise: [0, 0.2]}``."""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """The members' model."""
    train: TrainConfig = Field(default_factory=TrainConfig)
    """How members train."""
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)
    """Members per cell and the ensemble sizes scored."""
    metrics: list[str] = Field(default_factory=lambda: metric_names())
    """Metrics scored per group and between groups (default: every registered metric)."""
    primary_metric: str | None = None
    """The metric optima and verdicts rank by (default: accuracy if listed, else the first
    per-group metric with a direction)."""
    test_mix: Literal["balanced", "natural"] = "balanced"
    """How ``overall`` weighs the groups: equally, or as the test split holds them."""
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    """Where units run."""
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    """How results are summarised."""

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if not self.ratios:
            raise ValueError("ratios: expected at least one value in [0, 1]")
        ks = self.ensemble.k or []
        if any(k > self.ensemble.members for k in ks):
            raise ValueError(
                f"ensemble.k: every k must be <= ensemble.members ({self.ensemble.members}),"
                f" got {ks}; leave k out to follow members"
            )
        if not self.metrics:
            raise ValueError("metrics: expected at least one metric name")
        known = metric_names()
        for i, name in enumerate(self.metrics):
            if name not in known:
                raise ValueError(f"metrics[{i}]: expected one of {known}, got {name!r}")
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"metrics: expected distinct names, got {self.metrics}")
        rankable = [m for m in self.metrics if _rankable(m)]
        if not rankable:
            raise ValueError("metrics: expected at least one per-group metric with a direction "
                             f"(one of {[m for m in known if _rankable(m)]})")
        if self.primary_metric is not None and not _rankable(self.primary_metric):
            raise ValueError(
                f"primary_metric: expected a per-group metric that is better higher or lower "
                f"(one of {[m for m in known if _rankable(m)]}), got {self.primary_metric!r}")
        if self.primary_metric is not None and self.primary_metric not in self.metrics:
            raise ValueError(
                f"primary_metric: expected one of metrics {self.metrics},"
                f" got {self.primary_metric!r}"
            )
        if self.mixes is not None:
            for i, mix in enumerate(self.mixes):
                total = sum(mix.values())
                if abs(total - 1.0) > 1e-6:
                    raise ValueError(f"mixes[{i}]: shares must sum to 1, got {total:g}")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key}: expected a non-empty list of values")
        text = isinstance(self.dataset, TokenOptions)
        encoder = models.is_factory(self.model.name) and self.model.freeze == "backbone"
        if text and not (self.model.name == "bag" or encoder):
            raise ValueError(f"model.name: text data trains the built-in 'bag' model, or heads "
                             f"over a frozen encoder ('path/to/file.py:function' with "
                             f"model.freeze: backbone), got {self.model.name!r}")
        if self.model.name == "bag" and not text:
            raise ValueError(f"model.name: 'bag' reads texts; dataset.kind "
                             f"{self.dataset.kind!r} has none")
        return self

    # -- helpers used across the pipeline ------------------------------------------------

    def ks(self) -> list[int]:
        """The ensemble sizes to evaluate: configured (or default) ks plus 1 and E, sorted."""
        return self.ensemble.sizes()

    @property
    def primary(self) -> str:
        """The metric optima and verdicts use: ``primary_metric``, or accuracy if listed,
        else the first metric."""
        if self.primary_metric is not None:
            return self.primary_metric
        if "accuracy" in self.metrics:
            return "accuracy"
        return next(m for m in self.metrics if _rankable(m))

    def grid_points(self) -> list[dict[str, Any]]:
        """The cartesian product of ``grid``, as a list of {field: value} dicts."""
        if not self.grid:
            return [{}]
        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.grid.values())]

    def at(self, point: dict[str, Any]) -> RunConfig:
        """This config with one grid point's values applied (validated)."""
        if not point:
            return self
        data = self.model_dump(mode="json")
        for key, value in point.items():
            set_path(data, key, value)
        data["grid"] = {}
        return validate(data)

    def mix_labels(self) -> list[float]:
        """The sweep's coordinate per mix: the ratio, or the index of an explicit mix."""
        if self.mixes is not None:
            return [float(i) for i in range(len(self.mixes))]
        return list(self.ratios)


# ----------------------------------------------------------------------------- loading


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted='a.b'``, creating dicts as needed. Under
    ``grid`` the rest is one key (a grid key names a dotted field): ``grid.dataset.label_noise``
    sets ``data['grid']['dataset.label_noise']``."""
    parts = dotted.split(".")
    if parts[0] == "grid" and len(parts) > 2:
        parts = ["grid", ".".join(parts[1:])]
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {part!r} is not a section that holds fields")
        node = nxt
    node[parts[-1]] = value


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ""
    for part in first["loc"]:
        if _is_union_tag(part):
            continue
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        if ":" in msg.split(" ")[0]:  # the message already names its field
            return msg
        return f"{loc}: {msg}" if loc else msg
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if first["type"] == "union_tag_invalid":
        kinds = ", ".join(DATASET_KINDS)
        return f"{loc}.kind: expected one of {kinds}, got {first['input'].get('kind')!r}"
    got = first.get("input")
    got_txt = "" if isinstance(got, dict) else f", got {got!r}"
    return f"{loc}: {msg.lower()}{got_txt}" if loc else msg


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part in DATASET_KINDS


def _default_kind(data: dict) -> dict:
    """A ``dataset`` section without ``kind`` is synthetic, the built-in default."""
    ds = data.get("dataset")
    if isinstance(ds, dict) and "kind" not in ds:
        data = {**data, "dataset": {**ds, "kind": "synthetic"}}
    return data


def validate(data: Any) -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping of fields, got {type(data).__name__}")
    data = _default_kind(data)
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    _check_grid_fields(cfg, data)
    return cfg


def _check_grid_fields(cfg: RunConfig, data: dict) -> None:
    base = cfg.model_dump(mode="json")
    for key, values in cfg.grid.items():
        node: Any = base
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"grid.{key}: not a config field")
            node = node[part]
        for value in values:
            trial = copy.deepcopy(data)
            trial["grid"] = {}
            set_path(trial, key, value)
            try:
                RunConfig.model_validate(_default_kind(trial))
            except ValidationError as err:
                raise ConfigError(f"grid.{key}={value!r}: {_describe(err)}") from None


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


# the configs shipped with the package (configs/ in the repository is a link to them)
CONFIGS = Path(__file__).resolve().parent / "configs"


def shipped_config(name: str) -> dict[str, Any]:
    """A shipped config (``configs/<name>.yaml``) as the mapping its YAML holds."""
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


# what `report --set` may change: anything but what was trained
REPORT_FIELDS = (*EVALUATION_FIELDS, *RUNTIME_FIELDS)


def check_evaluation_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """``--set`` lines that change only how stored cells are evaluated or run (``report``
    takes no other: a changed training needs ``run``)."""
    for text in overrides:
        key = parse_override(text)[0]
        if not any(key == f or key.startswith(f + ".") for f in REPORT_FIELDS):
            raise ConfigError(
                f"--set {key}: changes what was trained; `report` takes only evaluation "
                f"fields ({', '.join(REPORT_FIELDS)}); use `run` to train a changed config"
            )


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults when ``path`` is None), apply ``key=value`` overrides."""
    data: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{p}: not valid YAML{where}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of fields at the top level")
    for text in overrides or []:
        key, value = parse_override(text)
        set_path(data, key, value)
    return validate(data)


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
