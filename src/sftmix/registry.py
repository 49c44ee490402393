"""Small name-keyed registries for extension points (readers, evaluators, strategies, ...).

A registry can ``discover`` a package: on its first lookup it imports every module
under that package, so each entry registers itself where it is written and no list
of modules is kept by hand. A module that fails to import fails the lookup loudly.
An entry can also be lazy, a ``"module:object"`` string imported on first use
(:meth:`Registry.add_lazy`), so that naming an entry costs no import.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from sftmix.errors import SftmixError

T = TypeVar("T")


class _Lazy:
    def __init__(self, target: str) -> None:
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"a lazy registry entry is 'module:object', found {target!r}")
        self.module, self.attr = module, attr

    def resolve(self) -> object:
        return getattr(importlib.import_module(self.module), self.attr)


class Registry(Generic[T]):
    """Maps names to objects; an unknown name lists the available ones."""

    def __init__(self, kind: str, discover: str | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T | _Lazy] = {}
        self._discover = discover

    def _load(self) -> None:
        if self._discover is not None:
            package, self._discover = self._discover, None
            for module in submodules(package):
                importlib.import_module(module)

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def add_lazy(self, name: str, target: str) -> None:
        """Register ``"module:object"``, imported the first time ``name`` is looked up."""
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = _Lazy(target)

    def get(self, name: str) -> T:
        self._load()
        try:
            item = self._items[name]
        except KeyError:
            raise SftmixError(
                f"unknown {self.kind} '{name}'; available: {', '.join(sorted(self._items))}"
            ) from None
        if isinstance(item, _Lazy):
            item = self._items[name] = item.resolve()  # type: ignore[assignment]
        return item  # type: ignore[return-value]

    def remove(self, name: str) -> None:
        """Forget ``name`` (a test that registers an entry takes it out again)."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def in_order(self) -> list[str]:
        """The names in the order they were registered (where that order means something)."""
        self._load()
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def submodules(package: str) -> list[str]:
    """Every module under ``package`` (sub-packages included), by name, in a stable order."""
    root = importlib.import_module(package)
    found = pkgutil.walk_packages(root.__path__, prefix=package + ".")
    return sorted(info.name for info in found)
