"""YAML configuration files validated by typed models.

``load_config(path, Model)`` reads a YAML file and validates it with a pydantic
model. A wrong field raises :class:`~sftmix.errors.ConfigError` naming the file,
the line, the field path and what was expected, e.g.::

    study.yaml, line 12, field 'designs.scaling.fractions[2]': found -0.5, expected a number > 0
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sftmix.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def parse_amount(value: Any) -> Any:
    """``"1/64"`` -> 0.015625; numbers pass through for pydantic to check.

    The one spelling of an amount everywhere a config takes one (mixtures, train
    stages, strategy options, studies): a number or a quoted fraction.
    """
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"expected a number or a fraction such as '1/64', found {value!r}") from None
    return value


Amount = Annotated[float, BeforeValidator(parse_amount), Field(ge=0)]


class StrictModel(BaseModel):
    """Base for every config model: unknown fields are errors, not silently ignored, and a
    number is finite (YAML's ``.inf`` and ``.nan`` would pass ``gt=0`` or reach a scheduler)."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True,
                              allow_inf_nan=False)


class Loader(yaml.SafeLoader):
    """YAML as sftmix reads it: YAML 1.1 without base-60 numbers, so that an unquoted time
    such as ``1:30:00`` stays the text it looks like instead of the number 5400."""


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
# PyYAML's own patterns, less their sexagesimal alternatives.
Loader.add_implicit_resolver(_FLOAT, re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))
Loader.add_implicit_resolver(_INT, re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X), list("-+0123456789"))


def load_yaml_text(text: str) -> Any:
    """The data of a YAML document, read by :class:`Loader`."""
    return yaml.load(text, Loader=Loader)


@dataclass(frozen=True)
class Override:
    """One ``KEY=VALUE`` from the command line: a field path into a config file and a value."""

    path: tuple[str | int, ...]
    value: Any
    text: str  # as the user typed it, for messages
    flag: str = "--set"

    def __str__(self) -> str:
        return f"{self.flag} {self.text}"


def parse_override(text: str, flag: str = "--set") -> Override:
    """``training.max_steps=2`` or ``stages[0].data[1].fraction=1/4`` (the value is read as YAML)."""
    key, sep, raw = text.partition("=")
    parts: list[str | int] = []
    for piece in key.strip().split("."):
        m = re.fullmatch(r"([A-Za-z_][\w-]*)((?:\[\d+\])*)", piece)
        if not m:
            parts = []
            break
        parts.append(m.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    if not sep or not parts:
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE with KEY a field path as in the "
                          "YAML file, e.g. training.max_steps=2 or stages[0].data[0].fraction=1/4")
    try:
        value = load_yaml_text(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{flag} {text!r}: the value is not valid YAML ({exc})") from None
    return Override(tuple(parts), value, text, flag)


def parse_overrides(texts: Sequence[str], flag: str = "--set") -> list[Override]:
    return [parse_override(t, flag) for t in texts]


def apply_overrides(data: Any, overrides: Sequence[Override], source: str) -> Any:
    """A copy of ``data`` with each override set; mappings on the way are created as needed."""
    if not overrides:
        return data
    data = copy.deepcopy(data) if data is not None else {}
    for o in overrides:
        node = data
        for depth, (part, nxt) in enumerate(zip(o.path, (*o.path[1:], None), strict=True)):
            here = field_path(o.path[:depth]) or "the top level"
            last = nxt is None
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    size = f"a list of {len(node)}" if isinstance(node, list) else "not a list"
                    raise ConfigError(f"{o}: {source} has no item [{part}] at {here} ({size})")
                if last:
                    node[part] = o.value
                else:
                    node = node[part]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"{o}: in {source}, {here} is {_short(node)}, not a mapping "
                                  f"that could hold '{part}'")
            if last:
                node[part] = o.value
            else:
                if node.get(part) is None:
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
    return data


@dataclass(frozen=True)
class Source:
    """Where a config's data came from, for messages: the file, its YAML node tree (line
    numbers) and the command-line overrides set on it (a field one of them set is named by
    its flag, not by a line of the file)."""

    name: str
    node: yaml.Node | None = None
    overrides: tuple[Override, ...] = ()

    def override_of(self, loc: Sequence[Any]) -> Override | None:
        """The override that set the field at ``loc``, or a field inside it."""
        loc = tuple(loc)
        if not loc:
            return None
        return next((o for o in reversed(self.overrides)
                     if loc[:len(o.path)] == o.path or o.path[:len(loc)] == loc
                     or self._created_by(o, loc)), None)

    def _created_by(self, override: Override, loc: tuple[Any, ...]) -> bool:
        """True when ``override`` created a mapping the file does not have and ``loc`` lies in
        it: ``--set abilities.mathz.data.path=x`` makes ``abilities.mathz``, whose missing
        ``data.format`` is the flag's doing, not a line of the file's."""
        common = 0
        while common < min(len(loc), len(override.path)) and loc[common] == override.path[common]:
            common += 1
        return self.node is not None and common > 0 and not _in_tree(self.node, loc[:common])

    def where(self, loc: Sequence[Any]) -> str:
        """``file, line N`` (or ``file as set by --set K=V``) of the field at ``loc``."""
        by = self.override_of(loc)
        if by is not None:
            return f"{self.name} as set by {by}"
        line = _line_of(self.node, tuple(loc))
        return self.name + (f", line {line}" if line else "")


def as_source(source: Source | str) -> Source:
    return source if isinstance(source, Source) else Source(source)


def read_yaml(path: str | Path, overrides: Sequence[Override] = (),
              variables: Mapping[str, str] | None = None) -> tuple[Any, Source]:
    """Parse a YAML file; returns the data, with ``overrides`` set on it, and its :class:`Source`.

    ``${NAME}`` in the file is ``variables[NAME]`` if given there, else the environment's.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (expected a YAML file)")
    text = expand_env(read_text(path, "a YAML file"), str(path), variables)
    try:
        node = yaml.compose(text, Loader=Loader)
        data = load_yaml_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{loc}: not valid YAML ({problem})") from None
    return apply_overrides(data, overrides, str(path)), Source(str(path), node, tuple(overrides))


def read_text(path: Path, expected: str) -> str:
    """A text file's content; bytes that are not UTF-8 are a ConfigError naming where they are."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}, line {line} (byte {exc.start}): not UTF-8 text (found byte "
            f"0x{raw[exc.start]:02x}); expected {expected} saved as UTF-8") from None


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, source: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with ``variables``' or the environment's
    values, line by line."""
    known = {**os.environ, **(variables or {})}
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        def sub(m: re.Match[str], number: int = number) -> str:
            value = known.get(m.group(1))
            if value is None:
                if m.group(2) is None:
                    raise ConfigError(
                        f"{source}, line {number}: environment variable {m.group(1)} is not set "
                        f"(set it, or write ${{{m.group(1)}:-default}} in the file)"
                    )
                value = m.group(2)
            return value
        out.append(_ENV.sub(sub, line))
    return "".join(out)


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:  # a key with a newline or other control character is shown quoted, on one line
            out += ("." if out else "") + (str(part) if str(part).isprintable() else repr(part))
    return out


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def _in_tree(node: yaml.Node, loc: tuple[Any, ...]) -> bool:
    """Whether the file itself has the field at ``loc``."""
    for part in loc:
        found = _child(node, part)
        if found is None:
            return False
        node = found
    return True


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest node of ``loc`` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        found = _child(node, part) if node is not None else None
        if found is None:
            break
        node = found
        line = node.start_mark.line + 1
    return line


class Problems:
    """Problems found across several fields of one file, each reported with its line and field.

    ``add(loc, message)`` records one; ``note(text)`` a remedy several of them share, said once
    at the end; ``raise_if_any()`` raises them all as one ConfigError.
    """

    def __init__(self, source: Source | str) -> None:
        self.source = as_source(source)
        self.items: list[str] = []
        self.notes: list[str] = []

    def add(self, loc: tuple[Any, ...], message: str) -> None:
        self.items.append(f"{self.source.where(loc)}, field '{field_path(loc)}': {message}")

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError("; ".join(self.items) + "".join(f". {n}" for n in self.notes))


class FieldError(ValueError):
    """A problem a model-level validator finds in one of the model's fields: ``loc`` names the
    field (as pydantic's locations do), so the message points at its line, not at the model."""

    def __init__(self, loc: tuple[Any, ...], found: Any, message: str) -> None:
        super().__init__(message)
        self.loc, self.found = loc, found


def describe_validation_error(exc: ValidationError, source: Source | str,
                              prefix: tuple[Any, ...] = ()) -> str:
    """One paragraph per problem: where, what was found, what was expected.

    A value set on the command line is named by its flag, not by a line of the file.
    """
    source = as_source(source)
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc, err = loc + cause.loc, {**err, "input": cause.found, "msg": str(cause)}
        full = prefix + loc
        where = source.where(full)
        path = field_path(full) or "(top level)"
        found = err.get("input")
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix to a validator's words
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}, field '{path}': unknown field (check its spelling)")
        elif err["type"] == "missing":
            lines.append(f"{where}, field '{path}': required field is missing")
        else:
            lines.append(f"{where}, field '{path}': found {_short(found)}, expected: {msg}")
    return "; ".join(lines)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(model: type[M], data: Any, source: Source | str) -> M:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def load_config(path: str | Path, model: type[M], overrides: Sequence[Override] = ()) -> M:
    data, source = read_yaml(path, overrides)
    return validate(model, data, source)


def dump_yaml(model: BaseModel | dict[str, Any]) -> str:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
