"""The pydantic base every config section builds on, shared field types, and validators that
several sections use. No fairensemble imports: data sources declare their config classes with
these, and ``config.py`` assembles the run config from them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class Strict(BaseModel):
    """A config section: unknown keys are errors, assignments are validated, and a field's
    docstring is its description (the configuration reference is generated from them)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True,
                              use_attribute_docstrings=True)


def column_name(value: Any) -> Any:
    """A column named by a number in YAML (``target: 21`` for a headerless file whose columns
    are numbered) is the same column as its text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return [column_name(v) for v in value]
    return value


def check_hard_group(groups: list[str], hard_group: str | None) -> None:
    if hard_group is not None and hard_group not in groups:
        raise ValueError(f"dataset.hard_group: expected one of {groups}, got {hard_group!r}")


__all__ = ["Fraction", "NonNegativeInt", "PositiveInt", "Strict", "check_hard_group", "column_name"]
