"""YAML configuration files validated by typed models.

``load_config(path, Model)`` reads a YAML file and validates it with a pydantic
model. A wrong field raises :class:`~sftmix.errors.ConfigError` naming the file,
the line, the field path and what was expected, e.g.::

    study.yaml, line 12, field 'designs.scaling.fractions[2]': found -0.5, expected a number > 0
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from sftmix.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config model: unknown fields are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; returns the data and its node tree (for line numbers)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (expected a YAML file)")
    text = expand_env(read_text(path, "a YAML file"), str(path))
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{loc}: not valid YAML ({problem})") from None
    return data, node


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


def expand_env(text: str, source: str) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with environment values, line by line."""
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        def sub(m: re.Match[str], number: int = number) -> str:
            value = os.environ.get(m.group(1))
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
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest node of ``loc`` that exists in the YAML tree."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


class Problems:
    """Problems found across several fields of one file, each reported with its line and field.

    ``add(loc, message)`` records one; ``raise_if_any()`` raises them all as one ConfigError.
    """

    def __init__(self, source: str, node: yaml.Node | None) -> None:
        self.source, self.node = source, node
        self.items: list[str] = []

    def add(self, loc: tuple[Any, ...], message: str) -> None:
        line = _line_of(self.node, loc)
        where = self.source + (f", line {line}" if line else "")
        self.items.append(f"{where}, field '{field_path(loc)}': {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError("; ".join(self.items))


def describe_validation_error(exc: ValidationError, source: str, node: yaml.Node | None = None,
                              prefix: tuple[Any, ...] = ()) -> str:
    """One paragraph per problem: where, what was found, what was expected."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        full = prefix + loc
        line = _line_of(node, full)
        where = f"{source}" + (f", line {line}" if line else "")
        path = field_path(full) or "(top level)"
        found = err.get("input")
        msg = err["msg"]
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


def validate(model: type[M], data: Any, source: str, node: yaml.Node | None = None) -> M:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, node)) from None


def load_config(path: str | Path, model: type[M]) -> M:
    data, node = read_yaml(path)
    return validate(model, data, str(path), node)


def dump_yaml(model: BaseModel) -> str:
    return yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
