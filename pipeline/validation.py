"""Validation with pydantic, reported the project's way: one line that names the key.

Every section of `params.yaml` (and a best.yaml genome) is a strict, frozen pydantic model
built from the pieces here: `Between` and `OneOf` add a range or a set of allowed values
with our own messages *and* their JSON Schema (`minimum`/`maximum`, `enum`), `Number`
accepts what PyYAML reads as a string (`1e-4` without a dot), and `one_line` turns the
first error of a `ValidationError` into "search.population: 0 is out of range; allowed
[2, 100000]". The same models export the JSON Schema that editors use to check params.yaml.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Any, Iterable

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError, core_schema

#: Discriminator tags of union members; not part of a key the user wrote.
TAGS = ("list", "range")


def describe(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def fail(message: str, key: str = "") -> PydanticCustomError:
    """An error for a validator to raise; `key` (relative to where it is raised) is
    prepended, so a cross-field check can name the key it is about."""
    return PydanticCustomError("automl", "{message}", {"message": message, "key": key})


class Section(BaseModel):
    """A params.yaml section: strict types (no "3" for 3), unknown keys refused, frozen;
    an empty section (`search:` with nothing under it) means all defaults."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)

    #: What an unknown key is called in messages ("key", or "gene" for the space).
    noun: typing.ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _empty_means_defaults(cls, data: Any) -> Any:
        return {} if data is None else data


def _yaml_float(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)  # PyYAML reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    return value


Number = Annotated[float, BeforeValidator(_yaml_float)]


@dataclass(frozen=True)
class Between:
    """low <= value <= high, as a validator with our message and as JSON Schema bounds."""

    low: float
    high: float

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler):
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler: GetJsonSchemaHandler):
        out = handler(schema)
        out.update(minimum=self.low, maximum=self.high)
        return out

    def _check(self, value):
        if not self.low <= value <= self.high:
            raise fail(f"{value} is out of range; allowed [{self.low}, {self.high}]")
        return value


@dataclass(frozen=True)
class OneOf:
    """Value in `choices` (a bool is never taken for 1); `refused` maps names that are
    known but not offered to the reason (printed instead of "unknown choice")."""

    choices: tuple
    refused: tuple = ()

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler):
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler: GetJsonSchemaHandler):
        out = handler(schema)
        out["enum"] = list(self.choices)
        return out

    def _check(self, value):
        if any(value == choice and type(value) is type(choice) for choice in self.choices):
            return value
        reasons = dict(self.refused)
        if value in reasons:
            raise fail(f"{describe(value)} is refused: {reasons[value]}")
        allowed = ", ".join(map(str, self.choices))
        if isinstance(value, str):
            raise fail(f"unknown choice {describe(value)}; allowed: {allowed}")
        raise fail(f"{value} is not allowed; allowed: {allowed}")


def listed(item: Any, what: str, unique: bool = True, empty_ok: bool = False):
    """A YAML list of `item`, held as a tuple: "expected <what>" when it is not a list or
    is empty (unless `empty_ok`), duplicates dropped in order (a choice listed twice is one)."""

    def check(value: Any) -> Any:
        if value == [] and not empty_ok:
            raise fail(f"empty list of choices; expected {what}")
        if not isinstance(value, (list, tuple)):
            raise fail(f"expected {what}, got {describe(value)}")
        return tuple(value)

    def deduplicate(value: tuple) -> tuple:
        return tuple(dict.fromkeys(value)) if unique else value

    return Annotated[tuple[item, ...], BeforeValidator(check), AfterValidator(deduplicate)]


MESSAGES = {
    "int_type": "expected an integer, got {input}",
    "int_parsing": "expected an integer, got {input}",
    "int_from_float": "expected an integer, got {input}",
    "float_type": "expected a number, got {input}",
    "float_parsing": "expected a number, got {input}",
    "finite_number": "expected a number, got {input}",
    "bool_type": "expected true or false, got {input}",
    "bool_parsing": "expected true or false, got {input}",
    "string_type": "expected a string, got {input}",
    "string_too_short": "expected a non-empty string, got {input}",
    "list_type": "expected a list, got {input}",
    "model_type": "expected a mapping, got {input}",
    "dict_type": "expected a mapping, got {input}",
    "model_attributes_type": "expected a mapping, got {input}",
}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found:
            return found
    return None


def _model_at(model: type[BaseModel], parts: Iterable) -> type[BaseModel] | None:
    for part in parts:
        if part in TAGS or isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None
        model = _model_in(field.annotation)
    return model


def _key(parts: Iterable, prefix: str = "") -> str:
    names = [str(p) for p in parts if p not in TAGS and not isinstance(p, int)]
    return ".".join(([prefix] if prefix else []) + names)


def one_line(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first error as "key: what was expected, got what" (the key dotted from the root)."""
    error = err.errors(include_url=False)[0]
    loc, kind = list(error["loc"]), error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        if any(p == "range" for p in loc):
            return f"{_key(loc[:-1], prefix)}: unknown key '{loc[-1]}'; expected {{low, high}} or {{low, high, log}}"
        known = ", ".join(parent.model_fields) if parent else ""
        noun = parent.noun if parent is not None and hasattr(parent, "noun") else "key"
        return f"{_key(loc[:-1], prefix)}{'.' if loc[:-1] or prefix else ''}{loc[-1]}: unknown {noun}; known {noun}s: {known}"
    if kind == "missing":
        return f"{_key(loc[:-1], prefix)}: missing '{loc[-1]}'"
    if kind == "automl":
        key = _key(loc, prefix)
        if ctx.get("key"):
            key = f"{key}.{ctx['key']}" if key else ctx["key"]
        return f"{key}: {ctx['message']}"
    template = MESSAGES.get(kind)
    if template:
        message = template.format(input=describe(error.get("input")))
    else:  # a custom union error: its message, and what was given
        message = f"{error['msg']}, got {describe(error.get('input'))}" if kind.startswith("automl") else error["msg"]
    return f"{_key(loc, prefix) or prefix or 'params'}: {message}"
