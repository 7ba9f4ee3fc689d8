"""Adapter registry: built-ins, :func:`register_adapter`, and the ``workbench.adapters`` entry points.

Adding a broker is one package plus one registration, either in code::

    workbench.register_adapter("mybroker", "mypkg.adapter:MyAdapter")

or, without touching workbench, as an entry point in the broker package's ``pyproject.toml``::

    [project.entry-points."workbench.adapters"]
    mybroker = "mypkg.adapter:MyAdapter"

Targets are ``"module:Class"`` strings imported on first use, so ``import workbench`` never imports
a broker SDK. The factory also tells settings (:data:`workbench.core.settings.SCHEMA`) which model
validates each section, from SDK-free config modules, so every section is checked at load even for a
broker that is not in use; ``register_adapter(..., config=...)`` does the same for a plugin.
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from workbench.core.errors import ConfigError, InvalidInput, shown
from workbench.core.settings import SCHEMA, Settings, load_settings, normalize_broker
from workbench.marketdata import PROVIDERS

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .base import AdapterBase

__all__ = ["AdapterRegistry", "registry", "register_adapter", "known_adapters", "get_adapter"]

ENTRY_POINT_GROUP = "workbench.adapters"
_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,63}$")  # (the names NeutralOrder.broker accepts)
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

_BUILTIN = {
    "paper": "workbench.adapters.paper.adapter:PaperAdapter",
    "ib": "workbench.adapters.ib.adapter:IBAdapter",
    "alpaca": "workbench.adapters.alpaca.adapter:AlpacaAdapter",
}

#: The model of each settings section (SDK-free modules), validated at every settings load.
SECTION_MODELS = {
    "paper": "workbench.paper.config:PaperConfig",
    "ib": "workbench.adapters.ib.config:IBConfig",
    "alpaca": "workbench.adapters.alpaca.config:AlpacaConfig",
    "market_data.sim": "workbench.marketdata.sim:SimConfig",
    "market_data.yfinance": "workbench.marketdata.yahoo_config:YFinanceConfig",
}


class AdapterRegistry:
    """Names to adapter classes (or lazy ``"module:Class"`` targets)."""

    def __init__(self, builtin: dict[str, str]) -> None:
        self._targets: dict[str, Any] = dict(builtin)
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, target: str | type[AdapterBase], *, replace: bool = False) -> None:
        from .base import AdapterBase

        if not isinstance(name, str) or not _NAME.match(normalize_broker(name)):
            raise InvalidInput(f"an adapter name is a short lower-case word such as 'mybroker', not {shown(name)}",
                               field="name")
        if not (isinstance(target, str) and _TARGET.match(target)
                or isinstance(target, type) and issubclass(target, AdapterBase)):
            raise InvalidInput(f"an adapter is an AdapterBase subclass or a 'module:Class' string, not {shown(target)}",
                               field="target")
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

    def resolve(self, name: str, *, file: str | None = None, key: str = "broker") -> type[AdapterBase]:
        """The adapter class for ``name``. ``file``/``key`` say where the name came from, for errors."""
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"a broker is named by a string such as 'paper', not {shown(name)}", file=file, key=key)
        canonical = normalize_broker(name)
        if canonical not in self._targets:
            self._load_entry_points()
        target = self._targets.get(canonical)
        if target is None:
            raise ConfigError(f"unknown broker {shown(name)}; known brokers: {', '.join(sorted(self.names()))}",
                              file=file, key=key)
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            try:
                target = getattr(importlib.import_module(module_name), attr)
            except ImportError as exc:
                raise ConfigError(f"broker {canonical!r} needs a package that is not installed: {exc.name} "
                                  f"(pip install 'workbench[{canonical}]')", file=file, key=key) from None
            self._targets[canonical] = target
        return target


registry = AdapterRegistry(_BUILTIN)
SCHEMA.set_broker_names(registry.names)
for _section, _model in SECTION_MODELS.items():
    SCHEMA.add_section(_section, _model)
SCHEMA.add_choices("market_data.provider", lambda: PROVIDERS)

#: Where a broker name given to :func:`get_adapter` / ``connect`` came from, as errors say it.
ARGUMENT = "the broker argument"


def register_adapter(name: str, target: str | type[AdapterBase], *, replace: bool = False,
                     config: type[BaseModel] | str | None = None) -> None:
    """Register an adapter class (or a lazy ``"module:Class"`` string) under ``name``.

    ``config`` (a pydantic model, or a ``"module:Class"`` string of an SDK-free module) validates the
    ``name`` section of every settings load from now on.
    """
    if not (config is None or isinstance(config, str) and _TARGET.match(config)
            or isinstance(config, type) and hasattr(config, "model_validate")):
        raise InvalidInput(f"config is a pydantic model or a 'module:Class' string, not {shown(config)}",
                           field="config")
    registry.register(name, target, replace=replace)
    if config is not None:
        SCHEMA.add_section(normalize_broker(name), config)


def known_adapters() -> set[str]:
    """Every adapter name the factory can build."""
    return registry.names()


def get_adapter(name: str | None = None, settings: Settings | dict[str, Any] | str | None = None,
                **kwargs: Any) -> AdapterBase:
    """Build (not connect) the adapter ``name`` (default: the settings' ``default_broker``).

    Unknown names raise ConfigError listing the known ones and naming where the name came from (this
    argument, ``BROKER_TYPE``, or the settings file's ``default_broker``).
    """
    resolved = load_settings(settings)
    if name is None:
        cls = registry.resolve(resolved.default_broker, file=resolved.origin("default_broker") or "built-in defaults",
                               key="default_broker")
    else:
        cls = registry.resolve(name, file=ARGUMENT, key="broker")
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params or key == "settings":
                takes = ", ".join(p for p in params if p != "settings") or "none"
                raise InvalidInput(f"the {cls.name} adapter takes no argument {shown(key)} (it takes: {takes})",
                                   field=key)
    return cls(resolved, **kwargs)
