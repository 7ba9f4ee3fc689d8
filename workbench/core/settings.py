"""Settings: built-in defaults < settings.json < environment overrides < a dict given in code.

The file is ``$WORKBENCH_SETTINGS`` if set, else the nearest ``settings.json`` walking up from the
working directory, else none (built-in defaults). Each broker section is validated by its adapter's
own config class through :meth:`Settings.section_model`, so a bad key raises :class:`ConfigError`
naming the file and the dotted key.

Secrets never live in the file: they come only from environment variables (``ALPACA_API_KEY``,
``ALPACA_SECRET_KEY``), are held as :class:`pydantic.SecretStr`, and are masked in every repr and log
line written through :func:`workbench.core.log.get_logger`.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from .errors import ConfigError
from .log import register_secret

__all__ = ["Settings", "load_settings", "DEFAULTS", "SECRET_ENV_VARS", "ENV_OVERRIDES"]

M = TypeVar("M", bound=BaseModel)

#: The embedded defaults. ``settings.json`` at the repository root mirrors them (a test keeps it so).
DEFAULTS: dict[str, Any] = {
    "default_broker": "paper",
    "request_timeout": 30.0,
    "market_data": {
        "provider": "sim",
        "sim": {"seed": 7, "symbols": {}},
        "yfinance": {
            "cache_dir": "~/.workbench/cache/yfinance",
            "ttl_seconds": 900,
            "quote_ttl_seconds": 15,
            "max_workers": 4,
            "requests_per_second": 2.0,
            "retries": 3,
            "backoff_seconds": 1.0,
            "timeout": 10.0,
            "progress": True,
        },
    },
    "paper": {
        "db_path": "~/.workbench/paper.sqlite",
        "starting_cash": 100000,
        "slippage_bps": 1.0,
        "commission": {"per_order": 0.0, "per_share": 0.005, "minimum": 1.0},
        "allow_short": False,
        "enforce_market_hours": False,
        "partial_fill_fraction": 0.0,
        "tick_interval": 1.0,
        "synchronous": "NORMAL",
    },
    "ib": {"host": "127.0.0.1", "port": 4002, "client_id": 1, "readonly": False, "allow_live": False},
    "widgets": {"confirm_notional": 50000, "confirm_away_pct": 5.0, "refresh_seconds": 5.0},
    "alpaca": {
        "paper": True,
        "base_url": "https://paper-api.alpaca.markets",
        "data_url": "https://data.alpaca.markets",
        "stream_url": "wss://paper-api.alpaca.markets/stream",
        "allow_live": False,
    },
}

#: Secrets are read from these environment variables only.
SECRET_ENV_VARS = ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")

#: Environment overrides (the IBKR plan's, plus the paper ledger path): variable -> (dotted key, type).
ENV_OVERRIDES: dict[str, tuple[str, type]] = {
    "BROKER_TYPE": ("default_broker", str),
    "IBKR_GATEWAY_HOST": ("ib.host", str),
    "IBKR_GATEWAY_PORT": ("ib.port", int),
    "IBKR_CLIENT_ID": ("ib.client_id", int),
    "WORKBENCH_PAPER_DB": ("paper.db_path", str),
}

#: How errors name values that came from the ``settings=`` argument rather than a file.
ARGUMENT = "settings argument"

#: Spellings of broker names that mean the same adapter.
BROKER_ALIASES = {"ibkr": "ib", "interactive_brokers": "ib", "sim": "paper"}

_SECRET_KEYS = {"api_key", "secret_key", "key_id", "secret", "password", "token"}


class _MarketData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str = "sim"
    sim: dict[str, Any] = Field(default_factory=dict)
    yfinance: dict[str, Any] = Field(default_factory=dict)


class _Core(BaseModel):
    model_config = ConfigDict(extra="allow")  # broker sections; checked against known brokers below
    default_broker: str = Field(min_length=1)
    request_timeout: float = Field(gt=0)
    market_data: _MarketData

#: Top-level keys besides broker sections.
_CORE_KEYS = {"default_broker", "request_timeout", "market_data", "widgets"}  # widgets: workbench.widgets.config
#: Broker sections that may exist before their adapter is installed.
_PLANNED_BROKERS = {"paper", "ib", "alpaca"}


class Settings:
    """Merged, validated settings. Build with :func:`load_settings`."""

    def __init__(self, data: dict[str, Any], source: str | None = None,
                 origins: dict[str, str] | None = None) -> None:
        self.source = source
        self._origins = origins or {}
        _reject_secrets(data, source)
        try:
            core = _Core.model_validate(data)
        except ValidationError as exc:
            raise self._error(exc, prefix="") from exc
        for key in data:
            if key not in _CORE_KEYS and key not in _PLANNED_BROKERS and not key.startswith("_"):
                from workbench.adapters.factory import known_adapters  # late: the factory imports settings

                if key not in known_adapters():
                    raise ConfigError(f"unknown setting {key!r} (not a setting nor a known broker)",
                                      file=self.origin(key), key=key)
        self.data = data
        self.default_broker = normalize_broker(core.default_broker)
        self.request_timeout = core.request_timeout
        self._secrets = {name: SecretStr(os.environ[name]) for name in SECRET_ENV_VARS if os.environ.get(name)}
        for secret in self._secrets.values():
            register_secret(secret.get_secret_value())

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section (``{}`` if absent)."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError("section must be an object", file=self.source, key=name)
        return copy.deepcopy(value)

    def section_model(self, name: str, model: type[M]) -> M:
        """Validate section ``name`` (a dotted path such as ``market_data.sim``) with ``model``."""
        value: Any = self.data
        for part in name.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else None
        if not isinstance(value, dict):
            raise ConfigError("section must be an object", file=self.source, key=name)
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise self._error(exc, prefix=name + ".") from exc

    def origin(self, key: str) -> str | None:
        """Where the value at dotted ``key`` came from: the file, an environment variable or the argument."""
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            found = self._origins.get(".".join(parts[:n]))
            if found is not None:
                return found
        return self.source

    def _error(self, exc: ValidationError, prefix: str) -> ConfigError:
        first = exc.errors()[0]
        key = prefix + ".".join(str(p) for p in first["loc"])
        return ConfigError(f"invalid setting: {first['msg']} (got {first.get('input')!r})",
                           file=self.origin(key), key=key)

    def secret(self, env_name: str) -> SecretStr | None:
        """A secret from the environment (masked in reprs), or None if unset."""
        return self._secrets.get(env_name)

    def __repr__(self) -> str:
        secrets = ", ".join(f"{k}=**********" for k in self._secrets)
        return f"Settings(source={self.source!r}, default_broker={self.default_broker!r}{', ' + secrets if secrets else ''})"


def normalize_broker(name: str) -> str:
    key = name.strip().lower()
    return BROKER_ALIASES.get(key, key)


def find_settings_file(start: Path | None = None) -> Path | None:
    """``$WORKBENCH_SETTINGS``, else the nearest settings.json from ``start`` (cwd) upwards."""
    env = os.environ.get("WORKBENCH_SETTINGS")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError("WORKBENCH_SETTINGS points to a missing file", file=str(path))
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "settings.json"
        if candidate.is_file():
            return candidate
    return None


def read_settings_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read settings: {exc.strerror}", file=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                          file=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("settings must be a JSON object", file=str(path))
    return data


def load_settings(settings: Settings | str | os.PathLike[str] | Mapping[str, Any] | None = None) -> Settings:
    """Build :class:`Settings` from a path, a dict merged over the defaults, or nothing (discover)."""
    if isinstance(settings, Settings):
        return settings
    data = copy.deepcopy(DEFAULTS)
    origins: dict[str, str] = {}
    if isinstance(settings, (str, os.PathLike)):
        source: str | None = str(Path(settings).expanduser())
    else:
        found = find_settings_file()
        source = None if found is None else str(found)
    if source is not None:
        _merge(data, read_settings_file(source), origins, source)
    _apply_env(data, source, origins)
    if settings is not None and not isinstance(settings, (str, os.PathLike)):
        if not isinstance(settings, Mapping):
            raise ConfigError(f"settings must be a path or a dict, not {type(settings).__name__}")
        _reject_secrets(dict(settings), ARGUMENT)
        _merge(data, copy.deepcopy(dict(settings)), origins, ARGUMENT)
    return Settings(data, source, origins)


def _merge(base: dict[str, Any], over: Mapping[str, Any], origins: dict[str, str], label: str,
           prefix: str = "") -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origins, label, f"{prefix}{key}.")
        else:
            base[key] = value
            origins[prefix + key] = label


def _apply_env(data: dict[str, Any], source: str | None, origins: dict[str, str]) -> None:
    for var, (dotted, kind) in ENV_OVERRIDES.items():
        raw = os.environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            value = kind(raw)
        except ValueError as exc:
            raise ConfigError(f"environment variable {var}={raw!r} is not a valid {kind.__name__}",
                              file=source, key=dotted) from exc
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        origins[dotted] = f"environment variable {var}"


def _reject_secrets(data: Mapping[str, Any], source: str | None, prefix: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, Mapping):
            _reject_secrets(value, source, f"{prefix}{key}.")
        elif key.lower() in _SECRET_KEYS and value:
            raise ConfigError("secrets are read only from environment variables "
                              f"({', '.join(SECRET_ENV_VARS)}); remove it from the settings",
                              file=source, key=prefix + key)


