"""Adapter registry: built-ins, :func:`register_adapter`, and the ``workbench.adapters`` entry points.

Adding a broker is one package plus one registration, either in code::

    workbench.register_adapter("mybroker", "mypkg.adapter:MyAdapter")

or, without touching workbench, as an entry point in the broker package's ``pyproject.toml``::

    [project.entry-points."workbench.adapters"]
    mybroker = "mypkg.adapter:MyAdapter"

Targets are ``"module:Class"`` strings imported on first use, so ``import workbench`` never imports
a broker SDK.
"""

from __future__ import annotations

import importlib
import threading
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ConfigError
from workbench.core.settings import Settings, load_settings, normalize_broker

if TYPE_CHECKING:
    from .base import AdapterBase

__all__ = ["AdapterRegistry", "registry", "register_adapter", "known_adapters", "get_adapter"]

ENTRY_POINT_GROUP = "workbench.adapters"

_BUILTIN = {
    "paper": "workbench.adapters.paper.adapter:PaperAdapter",
    "ib": "workbench.adapters.ib.adapter:IBAdapter",
    "alpaca": "workbench.adapters.alpaca.adapter:AlpacaAdapter",
}


class AdapterRegistry:
    """Names to adapter classes (or lazy ``"module:Class"`` targets)."""

    def __init__(self, builtin: dict[str, str]) -> None:
        self._targets: dict[str, Any] = dict(builtin)
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, target: str | type[AdapterBase], *, replace: bool = False) -> None:
        key = normalize_broker(name)
        with self._lock:
            if key in self._targets and not replace and self._targets[key] != target:
                raise ConfigError(f"adapter {key!r} is already registered; pass replace=True to override")
            self._targets[key] = target

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                self._targets.setdefault(normalize_broker(ep.name), ep.value)
            self._entry_points_loaded = True

    def refresh(self) -> None:
        """Forget the entry-point scan (after installing a plugin at run time)."""
        with self._lock:
            self._entry_points_loaded = False

    def names(self) -> set[str]:
        self._load_entry_points()
        return set(self._targets)

    def resolve(self, name: str) -> type[AdapterBase]:
        key = normalize_broker(name)
        if key not in self._targets:
            self._load_entry_points()
        target = self._targets.get(key)
        if target is None:
            raise ConfigError(f"unknown broker {name!r}; known brokers: {', '.join(sorted(self.names()))}",
                              key="default_broker")
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                target = getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:
                raise ConfigError(f"broker {key!r} needs a package that is not installed: {exc.name} "
                                  f"(pip install 'workbench[{key}]')", key="default_broker") from exc
            self._targets[key] = target
        return target


registry = AdapterRegistry(_BUILTIN)


def register_adapter(name: str, target: str | type[AdapterBase], *, replace: bool = False) -> None:
    """Register an adapter class (or a lazy ``"module:Class"`` string) under ``name``."""
    registry.register(name, target, replace=replace)


def known_adapters() -> set[str]:
    """Every adapter name the factory can build."""
    return registry.names()


def get_adapter(name: str | None = None, settings: Settings | dict[str, Any] | str | None = None,
                **kwargs: Any) -> AdapterBase:
    """Build (not connect) the adapter ``name`` (default: the settings' ``default_broker``).

    Unknown names raise ConfigError listing the known ones.
    """
    resolved = load_settings(settings)
    cls = registry.resolve(name or resolved.default_broker)
    return cls(resolved, **kwargs)
