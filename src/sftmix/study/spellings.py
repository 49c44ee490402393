"""Older spellings of study and schedule files, read as today's words by one translation step.

The raw YAML data is rewritten before validation, and each rewrite logs a warning
naming the spelling to use instead:

* a model's ``path: FILE.gguf`` (or ``path: smollm2``) is ``gguf: ...``;
* a schedule's ``sources: {NAME: FILE}`` is ``abilities: {NAME: {data: FILE}}``;
* a schedule's ``strategy: {name: X, options: {...}}`` is ``strategy: {X: {...}}``;
* a stage part's ``seed`` is no longer used (parts are drawn with the training seed);
* a data file's ``ability`` is no longer used (its records train the ability it is listed under).

A schedule's stage parts may also name files instead of abilities (``{path: FILE,
fraction: 1/4}``): not an old spelling but a short one, translated here too --
each file becomes an ability named after it, as a study would declare it.
"""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def study(data: Any) -> Any:
    """A study file's data in today's words."""
    if not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    for model in data.get("models") or []:
        _gguf_path(model)
    return data


def schedule(data: Any) -> Any:
    """A schedule file's data (``sftmix train``) in today's words."""
    return schedule_with_origins(data)[0]


def schedule_with_origins(data: Any) -> tuple[Any, dict[str, tuple[Any, ...]]]:
    """:func:`schedule`, and where in the file each ability it declared for a stage's file was
    written (``("stages", 0, "data", 1, "path")``), for messages about that file."""
    origins: dict[str, tuple[Any, ...]] = {}
    if not isinstance(data, dict):
        return data, origins
    data = copy.deepcopy(data)
    _gguf_path(data.get("model"))
    if "sources" in data and "abilities" not in data:
        log.warning("'sources: {NAME: FILE}' is the old spelling of 'abilities: {NAME: {data: FILE}}' "
                    "(as a study file writes it); it is read as such")
        sources = data.pop("sources")
        data["abilities"] = ({name: {"data": value} for name, value in sources.items()}
                             if isinstance(sources, dict) else sources)
    strategy = data.get("strategy")
    if isinstance(strategy, dict) and "name" in strategy and set(strategy) <= {"name", "options"}:
        log.warning("strategy: '{name: %s, options: ...}' is the old spelling of '{%s: {...}}' "
                    "(as a study's strategies design writes it); it is read as such",
                    strategy["name"], strategy["name"])
        data["strategy"] = {strategy["name"]: strategy.get("options") or {}}
    for ability in (data.get("abilities") or {}).values():
        if isinstance(ability, dict):
            for ref in _refs(ability.get("data")):
                _no_ability(ref)
    for s, stage in enumerate(data.get("stages") or []):
        if isinstance(stage, dict) and isinstance(stage.get("data"), list):
            stage["data"] = [p for d, part in enumerate(stage["data"])
                             for p in _part(part, stage, data, origins, ("stages", s, "data", d))]
    return data, origins


def _gguf_path(model: Any) -> None:
    if isinstance(model, dict) and isinstance(model.get("path"), str) and "gguf" not in model:
        path = model["path"]
        if path == "smollm2" or path.endswith(".gguf"):
            log.warning("model %r: 'path: %s' is the old spelling of 'gguf: %s'; it is read as such",
                        model.get("name", "model"), path, path)
            model["gguf"] = model.pop("path")


def _refs(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _no_ability(ref: Any) -> None:
    if isinstance(ref, dict) and "ability" in ref:
        log.warning("data file %s: 'ability: %s' is no longer used: a file's records train the "
                    "ability it is listed under", ref.get("path"), ref.pop("ability"))


def _part(part: Any, stage: dict[str, Any], data: dict[str, Any], origins: dict[str, tuple[Any, ...]],
          loc: tuple[Any, ...]) -> list[Any]:
    """A stage part in today's words: files become abilities; a fraction of 0 takes nothing."""
    if not isinstance(part, dict):
        return [part]
    if "seed" in part:
        log.warning("stage %s: a part's 'seed' is no longer used; parts are drawn with the training "
                    "seed", stage.get("name"))
        part = {k: v for k, v in part.items() if k != "seed"}
    if "path" not in part or "ability" in part:
        return [part]
    amount = {k: v for k, v in part.items() if k != "path"}
    if amount.get("fraction") in (0, "0"):
        return []
    out = []
    many = isinstance(part["path"], list)
    for i, ref in enumerate(_refs(part["path"])):
        _no_ability(ref)
        name = _ability_for(ref, data)
        origins.setdefault(name, (*loc, "path", *((i,) if many else ())))
        out.append({"ability": name, **amount})
    return out


def _ability_for(ref: Any, data: dict[str, Any]) -> str:
    """The ability that reads ``ref`` (declared under ``abilities`` with ``ref`` as its data if
    no ability reads it yet), named after the file."""
    abilities = data.setdefault("abilities", {})
    if not isinstance(abilities, dict):
        return "data"
    for name, ability in abilities.items():
        if isinstance(ability, dict) and ability.get("data") == ref:
            return str(name)
    path = ref.get("path", "") if isinstance(ref, dict) else str(ref)
    base = re.sub(r"\W", "_", Path(str(path)).stem) or "data"
    name, n = base, 1
    while name in abilities:
        n += 1
        name = f"{base}_{n}"
    abilities[name] = {"data": ref}
    return name
