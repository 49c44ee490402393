"""Record validation: the checks every reader applies, with errors that say where.

A reader turns one raw record (a dict from JSON, JSONL, Parquet, ...) into an
:class:`~sftmix.data.records.Example`. Whatever is wrong with the record is
raised as :class:`RecordError` naming the *field* (``conversations[3].from``);
:func:`sftmix.data.sources.load_source` adds the *file* and the *line* (JSONL)
or the 0-based *record* index (JSON list, Parquet, ``datasets`` folder) and
either raises a :class:`~sftmix.errors.DataError` (``on_error: raise``) or
counts the record as skipped (``on_error: skip``).

The conversation rules (:func:`check_turns`):

* roles are ``system``, ``user``, ``assistant`` (readers map their own names);
* at most one ``system`` turn, and only first;
* after it, turns alternate ``user``, ``assistant``, ``user``, ... starting with ``user``;
* the last turn is the ``assistant``'s (a training example must have something
  to learn); evaluation-only readers (IFEval prompts) relax this one rule;
* every content is a non-empty string (whitespace alone counts as empty).

The checks are plain Python on purpose: they run once per record on hundreds of
thousands of records, where a pydantic model per record would dominate the time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sftmix.data.records import Message


class RecordError(ValueError):
    """One problem in one record: ``field`` is the path inside the record."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field '{field}': {message}")
        self.field = field
        self.message = message


def type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages such as 'found a number'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def require_mapping(raw: Any) -> Mapping[str, Any]:
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise RecordError("(record)", f"expected a JSON object, found {type_name(raw)}")
    return raw


def require_text(raw: Mapping[str, Any], field: str, *, allow_empty: bool = False) -> str:
    """The string at ``raw[field]``; missing, non-string or (unless allowed) empty is an error."""
    if field not in raw:
        raise RecordError(field, f"required field is missing (the record has: {', '.join(sorted(map(str, raw))) or 'no fields'})")
    return check_text(raw[field], field, allow_empty=allow_empty)


def check_text(value: Any, field: str, *, allow_empty: bool = False) -> str:
    if type(value) is not str and not isinstance(value, str):
        raise RecordError(field, f"expected a string, found {type_name(value)}")
    if not allow_empty and not value.strip():
        raise RecordError(field, "expected non-empty text, found an empty string")
    return value


def optional_text(raw: Mapping[str, Any], field: str) -> str:
    """A string field that may be absent or null (Alpaca's ``input``); wrong types still fail."""
    value = raw.get(field)
    if value is None:
        return ""
    return check_text(value, field, allow_empty=True)


def require_list(raw: Mapping[str, Any], field: str) -> Sequence[Any]:
    if field not in raw:
        raise RecordError(field, "required field is missing")
    value = raw[field]
    # numpy arrays arrive from Parquet / datasets rows; anything list-like but text is fine.
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__len__"):
        raise RecordError(field, f"expected a list of turns, found {type_name(value)}")
    if len(value) == 0:
        raise RecordError(field, "expected at least one turn, found an empty list")
    return value


def check_turns(turns: Sequence[tuple[str, str]], field: str, *,
                require_assistant_last: bool = True) -> tuple[Message, ...]:
    """Validate ``(role, content)`` turns of the list at ``field`` and return them as messages.

    The contents are already checked strings (:func:`turn_content`); this checks the order.
    """
    messages = []
    expected = "user"
    for i, (role, content) in enumerate(turns):
        if role == "system":
            if i != 0:
                raise RecordError(f"{field}[{i}]", f"a system turn may only come first, found one at position {i}")
        elif role != expected:
            raise RecordError(
                f"{field}[{i}]", f"turns must alternate user/assistant starting with user; expected "
                                 f"'{expected}' at position {i}, found '{role}'"
            )
        else:
            expected = "assistant" if role == "user" else "user"
        messages.append(Message(role, content))
    if require_assistant_last and (not messages or messages[-1].role != "assistant"):
        last = messages[-1].role if messages else "nothing"
        raise RecordError(field, f"the conversation must end with an assistant turn, it ends with '{last}'")
    if not messages or messages[-1].role == "system":
        raise RecordError(field, "the conversation has no user turn")
    return tuple(messages)


def turn_list(turns: Sequence[Any], field: str, role_key: str, content_key: str,
              roles: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(role, content)`` of every turn object, role names mapped through ``roles``.

    The loop checks the common, valid case inline and calls :func:`turn_content`
    only to name the exact problem of a bad turn (this runs once per turn of every record).
    """
    out = []
    for i, turn in enumerate(turns):
        if type(turn) is dict:
            name, content = turn.get(role_key), turn.get(content_key)
            if type(name) is str and type(content) is str and name in roles and content.strip():
                out.append((roles[name], content))
                continue
        path = f"{field}[{i}]"
        name, content = turn_content(turn, path, role_key, content_key)
        if name not in roles:
            raise RecordError(f"{path}.{role_key}", f"unknown role '{name}' (expected one of {', '.join(roles)})")
        out.append((roles[name], content))
    return out


def turn_content(turn: Any, path: str, role_key: str, content_key: str) -> tuple[str, str]:
    """The raw role name and the content of one turn object."""
    if type(turn) is not dict and not isinstance(turn, Mapping):
        raise RecordError(path, f"expected a turn object with '{role_key}' and '{content_key}', found {type_name(turn)}")
    if role_key not in turn:
        raise RecordError(f"{path}.{role_key}", "required field is missing")
    role = turn[role_key]
    if not isinstance(role, str):
        raise RecordError(f"{path}.{role_key}", f"expected a role name (a string), found {type_name(role)}")
    if content_key not in turn:
        raise RecordError(f"{path}.{content_key}", "required field is missing")
    content = check_text(turn[content_key], f"{path}.{content_key}")
    return role, content
