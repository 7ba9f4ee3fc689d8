"""Settings: built-in defaults < settings.json < environment overrides < a dict given in code.

The file is ``$WORKBENCH_SETTINGS`` if set, else the nearest ``settings.json`` walking up from the
working directory, else none (built-in defaults). Every section is validated when settings load, by
the model registered for it in :data:`SCHEMA` (core knows no broker: the adapter factory registers
each adapter's SDK-free config model there), so a bad key raises :class:`ConfigError` naming where the
value came from (the file, an environment variable or the ``settings`` argument) and the dotted key,
even for a broker that is not in use.

Secrets never live in the file: they come only from environment variables (``ALPACA_API_KEY``,
``ALPACA_SECRET_KEY``), are held as :class:`pydantic.SecretStr`, and are masked in every repr, error
and log line written through :func:`workbench.core.log.get_logger`. They are registered for masking
before anything is validated.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import ConfigError, shown, shown_input, validation_message
from .log import register_env_secrets, register_secret

__all__ = ["Settings", "PathSetting", "SettingsSchema", "SCHEMA", "load_settings", "normalize_broker", "DEFAULTS",
           "SECRET_ENV_VARS", "ENV_OVERRIDES", "MAX_REQUEST_TIMEOUT"]


def _usable_path(value: str) -> str:
    """A file or folder path a setting may hold: no NUL byte, not blank, its ``~`` expandable here."""
    if "\x00" in value:
        raise ValueError("the path contains a NUL byte")
    if not value.strip():
        raise ValueError("the path is empty")
    try:
        Path(value).expanduser()
    except RuntimeError:  # "~someone" without a home directory here
        raise ValueError("cannot expand the ~ of this path") from None
    return value


#: A path-valued setting (``paper.db_path``, ``market_data.yfinance.cache_dir``...).
PathSetting = Annotated[str, AfterValidator(_usable_path)]

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


#: The longest ``request_timeout`` accepted (a day): longer waits overflow the platform's timers.
MAX_REQUEST_TIMEOUT = 86_400.0


class _Core(BaseModel):
    model_config = ConfigDict(extra="allow")  # broker sections; checked against the schema below
    default_broker: str = Field(min_length=1)
    request_timeout: float = Field(gt=0, le=MAX_REQUEST_TIMEOUT, allow_inf_nan=False)
    market_data: _MarketData

    @field_validator("request_timeout", mode="before")
    @classmethod
    def _not_a_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):  # (pydantic reads true as 1.0 s)
            raise ValueError("a number of seconds, not a boolean")
        return value


#: Top-level keys besides the sections that have a model in the schema.
_CORE_KEYS = {"default_broker", "request_timeout", "market_data"}


class SettingsSchema:
    """What settings may hold beyond the core keys: a model per section, and the broker names.

    Core imports no adapter; the adapter factory fills the process-wide :data:`SCHEMA` (the built-in
    sections, and plugins registered with a config model). Models may be lazy ``"module:Class"``
    strings, imported on first validation; they must not import a broker SDK.
    """

    def __init__(self) -> None:
        self._models: dict[str, type[BaseModel] | str] = {}
        self._choices: dict[str, Callable[[], Iterable[str]]] = {}
        self._broker_names: Callable[[], Iterable[str]] = lambda: ()
        self._lock = threading.Lock()

    def add_choices(self, dotted: str, names: Callable[[], Iterable[str]]) -> None:
        """The value at ``dotted`` (``"market_data.provider"``) must be one of ``names()`` (any case)."""
        with self._lock:
            self._choices[dotted] = names

    def choices(self) -> dict[str, Callable[[], Iterable[str]]]:
        with self._lock:
            return dict(self._choices)

    def add_section(self, dotted: str, model: type[BaseModel] | str) -> None:
        """Validate section ``dotted`` (``"ib"``, ``"market_data.yfinance"``) with ``model`` at every load."""
        with self._lock:
            self._models[dotted] = model

    def set_broker_names(self, names: Callable[[], Iterable[str]]) -> None:
        """Where broker names come from (their sections may appear even without a registered model)."""
        self._broker_names = names

    def broker_names(self) -> set[str]:
        return set(self._broker_names())

    def roots(self) -> set[str]:
        """Top-level keys that have a registered section model."""
        return {dotted.split(".", 1)[0] for dotted in self._models}

    def models(self) -> dict[str, type[BaseModel]]:
        """Every section model, imported."""
        with self._lock:
            for dotted, model in list(self._models.items()):
                if isinstance(model, str):
                    module, _, attr = model.partition(":")
                    try:
                        self._models[dotted] = getattr(importlib.import_module(module), attr)
                    except (ImportError, AttributeError) as exc:
                        raise ConfigError(f"cannot load the model of settings section {dotted!r} ({model}): {exc}",
                                          key=dotted) from None
            return dict(self._models)  # type: ignore[arg-type]


#: The process-wide schema (filled by :mod:`workbench.adapters.factory`; ``widgets`` is core's own).
SCHEMA = SettingsSchema()
SCHEMA.add_section("widgets", "workbench.core.widgets_config:WidgetsConfig")


class Settings:
    """Merged, validated settings. Build with :func:`load_settings`."""

    def __init__(self, data: dict[str, Any], source: str | None = None,
                 origins: dict[str, str] | None = None, schema: SettingsSchema | None = None) -> None:
        register_env_secrets()  # before anything is validated: errors below may quote values
        self.source = source
        self._origins = origins or {}
        self._secrets: dict[str, SecretStr] = {}
        self._models: dict[str, BaseModel] = {}  # section -> its validated model
        self._schema = SCHEMA if schema is None else schema
        self._reject_secrets(data)
        try:
            core = _Core.model_validate(data)
        except ValidationError as exc:
            raise self._error(exc, prefix="") from None  # the detail is on .errors; never chain input values
        self.data = data
        self._check_top_level(data)
        for dotted, model in self._schema.models().items():
            if self._lookup(dotted) is not None:
                self._models[dotted] = self.section_model(dotted, model)
        for dotted, names in self._schema.choices().items():
            value = self._lookup(dotted)
            known = sorted(names())
            if isinstance(value, str) and value.lower() not in known:
                raise ConfigError(f"unknown {dotted.rsplit('.', 1)[-1]} {shown(value)}; known: {', '.join(known)}",
                                  file=self.origin(dotted), key=dotted)
        self.default_broker = normalize_broker(core.default_broker)
        self.request_timeout = core.request_timeout
        self._secrets = {name: SecretStr(os.environ[name]) for name in SECRET_ENV_VARS if os.environ.get(name)}
        for secret in self._secrets.values():
            register_secret(secret.get_secret_value())

    def section(self, name: str) -> dict[str, Any]:
        """A copy of one section (``{}`` if absent)."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError("section must be an object", file=self.origin(name), key=name)
        return copy.deepcopy(value)

    def section_model(self, name: str, model: type[M]) -> M:
        """Section ``name`` (a dotted path such as ``market_data.sim``) validated with ``model``."""
        cached = self._models.get(name)
        if type(cached) is model:
            return cached  # type: ignore[return-value]  (validated at load)
        value = self._lookup(name)
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise ConfigError("section must be an object", file=self.origin(name), key=name)
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise self._error(exc, prefix=name + ".") from None

    def origin(self, key: str) -> str | None:
        """Where the value at dotted ``key`` came from: the file, an environment variable or the argument.

        A key set as a whole names its own origin (or its nearest parent's); a key whose parts came
        from several places names each of them.
        """
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            found = self._origins.get(".".join(parts[:n]))
            if found is not None:
                return found
        below = sorted({label for k, label in self._origins.items() if k.startswith(key + ".")})
        return " and ".join(below) if below else self.source

    def _lookup(self, dotted: str) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    def _check_top_level(self, data: Mapping[str, Any]) -> None:
        known = _CORE_KEYS | self._schema.roots()
        unknown = [k for k in data if k not in known and not k.startswith("_")]
        if unknown:
            brokers = self._schema.broker_names()  # may scan entry points: only when needed
            for key in unknown:
                if key not in brokers:
                    raise ConfigError(f"unknown setting {shown(key)} (not a setting nor a known broker)",
                                      file=self.origin(key), key=key)

    def _reject_secrets(self, data: Mapping[str, Any], prefix: str = "") -> None:
        for key, value in data.items():
            if isinstance(value, Mapping):
                self._reject_secrets(value, f"{prefix}{key}.")
            elif key.lower() in _SECRET_KEYS and value:
                raise ConfigError("secrets are read only from environment variables "
                                  f"({', '.join(SECRET_ENV_VARS)}); remove it from the settings",
                                  file=self.origin(prefix + key), key=prefix + key)

    def _error(self, exc: ValidationError, prefix: str) -> ConfigError:
        details = exc.errors(include_url=False)
        first = details[0]
        key = (prefix + ".".join(str(p) for p in first["loc"])).rstrip(".")
        quoted = f" (got {shown_input(first['input'])})" if "input" in first and not isinstance(first["input"], dict) \
            else ""
        more = f"; {len(details) - 1} more problem(s) in .errors" if len(details) > 1 else ""
        what = "unknown setting" if first["type"] == "extra_forbidden" \
            else f"invalid setting: {validation_message(first)}"
        return ConfigError(f"{what}{quoted}{more}", file=self.origin(key), key=key, errors=details)

    def secret(self, env_name: str) -> SecretStr | None:
        """A secret from the environment (masked in reprs), or None if unset."""
        return self._secrets.get(env_name)

    def __repr__(self) -> str:
        secrets = ", ".join(f"{k}=**********" for k in self._secrets)
        return f"Settings(source={self.source!r}, default_broker={self.default_broker!r}{', ' + secrets if secrets else ''})"


def normalize_broker(name: str) -> str:
    """The canonical spelling of a broker name (``"IBKR"`` -> ``"ib"``)."""
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


def _expanded(path: str | os.PathLike[str]) -> str:
    try:
        return str(Path(path).expanduser())
    except RuntimeError:  # "~someone" who has no home directory here
        raise ConfigError("cannot expand the ~ of this settings path", file=str(path)) from None


def read_settings_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(_expanded(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read settings: {exc.strerror}", file=str(path)) from None
    except ValueError:  # a NUL byte in the path (a file that is not UTF-8 text is a ValueError too)
        raise ConfigError("cannot read settings: not a readable UTF-8 file path", file=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:  # not chained: the decoder's error holds the document's text
        raise ConfigError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                          file=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError("settings must be a JSON object", file=str(path))
    return data


def load_settings(settings: Settings | str | os.PathLike[str] | Mapping[str, Any] | None = None) -> Settings:
    """Build :class:`Settings` from a path, a dict merged over the defaults, or nothing (discover).

    Every section is validated now (ConfigError naming the source and the dotted key).
    """
    if isinstance(settings, Settings):
        return settings
    register_env_secrets()  # first: nothing below may quote a secret unmasked
    data = copy.deepcopy(DEFAULTS)
    origins: dict[str, str] = {}
    if isinstance(settings, str) and settings.lstrip().startswith("{"):
        raise ConfigError("settings is a path to a settings.json or a dict, and this looks like JSON text: "
                          "pass json.loads(text), or the file's path", key="settings")
    if isinstance(settings, (str, os.PathLike)):
        source: str | None = _expanded(settings)
    else:
        found = find_settings_file()
        source = None if found is None else str(found)
    if source is not None:
        _merge(data, read_settings_file(source), origins, source)
    _apply_env(data, origins)
    if settings is not None and not isinstance(settings, (str, os.PathLike)):
        if not isinstance(settings, Mapping):
            raise ConfigError(f"settings must be a path or a dict, not {type(settings).__name__}", key="settings")
        _merge(data, _copy_checked(settings, ARGUMENT), origins, ARGUMENT)
    return Settings(data, source, origins)


def _copy_checked(data: Mapping[Any, Any], label: str, prefix: str = "") -> dict[str, Any]:
    """A deep copy of settings given in code, refusing non-string keys and values that are no setting."""
    copied: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"setting names must be strings, got {shown(key)} ({type(key).__name__})",
                              file=label, key=f"{prefix}{shown(key)}")
        if isinstance(value, Mapping):
            copied[key] = _copy_checked(value, label, f"{prefix}{key}.")
            continue
        try:
            copied[key] = copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - a generator, a socket...: not a setting value
            raise ConfigError(f"not a setting value: {shown(value)}", file=label, key=prefix + key) from None
    return copied


def _merge(base: dict[str, Any], over: Mapping[str, Any], origins: dict[str, str], label: str,
           prefix: str = "") -> None:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origins, label, f"{prefix}{key}.")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            origins[prefix + key] = label
            for stale in [k for k in origins if k.startswith(prefix + key + ".")]:
                del origins[stale]  # replaced whole: its old parts no longer exist


def _apply_env(data: dict[str, Any], origins: dict[str, str]) -> None:
    for var, (dotted, kind) in ENV_OVERRIDES.items():
        raw = os.environ.get(var)
        if raw is None or raw == "":
            continue
        label = f"environment variable {var}"
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{var}={shown(raw)} is not a valid {kind.__name__}", file=label, key=dotted) from None
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        origins[dotted] = label
