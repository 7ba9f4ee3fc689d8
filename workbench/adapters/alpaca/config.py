"""Settings of the ``alpaca`` section (no SDK import: settings validate it even when alpaca-py is absent).

Keys never live in settings: they come only from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``
(:func:`credentials`). The live guard (:meth:`AlpacaConfig.check_endpoint`) refuses any trading or stream
endpoint other than Alpaca's paper endpoints or a loopback emulator unless ``allow_live`` is true.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.core.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import SecretStr

    from workbench.core.settings import Settings

__all__ = ["AlpacaConfig", "credentials", "is_loopback", "PAPER_BASE_URL", "PAPER_STREAM_URL", "LIVE_BASE_URL",
           "LIVE_STREAM_URL", "KEY_ENV", "SECRET_ENV"]

PAPER_BASE_URL = "https://paper-api.alpaca.markets"
PAPER_STREAM_URL = "wss://paper-api.alpaca.markets/stream"
LIVE_BASE_URL = "https://api.alpaca.markets"
LIVE_STREAM_URL = "wss://api.alpaca.markets/stream"
DATA_URL = "https://data.alpaca.markets"
DATA_STREAM_URL = "wss://stream.data.alpaca.markets"
KEY_ENV, SECRET_ENV = "ALPACA_API_KEY", "ALPACA_SECRET_KEY"


class AlpacaConfig(BaseModel):
    """``alpaca`` settings. Keys come only from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``.

    - ``paper: false`` with the default URLs means Alpaca's live endpoints (refused unless ``allow_live``).
    - ``feed`` / ``adjustment`` are sent explicitly with every history request (``iex``: what free accounts
      have; ``all``: split- and dividend-adjusted).
    - ``timeout`` is the HTTP timeout per request; ``retries`` / ``retry_wait`` bound alpaca-py's own retry
      loop on 429 and 504 (its default sleeps 3 s up to 3 times).
    - ``reconnect_min`` / ``reconnect_max``: the streams' reconnect backoff (with jitter), seconds.
    - ``quotes``: how ``subscribe_market_data`` gets prices: ``stream`` (Alpaca's market-data websocket at
      ``data_stream_url`` + ``/v2/<feed>``: trades and quotes as they happen) or ``poll`` (the latest
      snapshot every ``quote_poll_interval`` seconds; for accounts whose one data connection is taken).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    paper: bool = True
    base_url: str = PAPER_BASE_URL
    data_url: str = DATA_URL
    stream_url: str = PAPER_STREAM_URL
    data_stream_url: str = DATA_STREAM_URL
    allow_live: bool = False
    feed: Literal["iex", "sip", "otc", "delayed_sip"] = "iex"
    adjustment: Literal["raw", "split", "dividend", "all"] = "all"
    timeout: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=2, ge=0, le=10)
    retry_wait: float = Field(default=1.0, ge=0, le=30)
    reconnect_min: float = Field(default=0.5, gt=0, le=60)
    reconnect_max: float = Field(default=30.0, gt=0, le=600)
    quotes: Literal["stream", "poll"] = "stream"
    quote_poll_interval: float = Field(default=1.0, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _live_defaults(cls, data: Any) -> Any:
        """``paper: false`` without explicit URLs means Alpaca's live endpoints."""
        if isinstance(data, dict) and data.get("paper") is False:
            data = dict(data)
            if data.get("base_url", PAPER_BASE_URL) == PAPER_BASE_URL:
                data["base_url"] = LIVE_BASE_URL
            if data.get("stream_url", PAPER_STREAM_URL) == PAPER_STREAM_URL:
                data["stream_url"] = LIVE_STREAM_URL
        return data

    @model_validator(mode="after")
    def _urls(self) -> AlpacaConfig:
        for name in ("base_url", "data_url", "stream_url", "data_stream_url"):
            url = getattr(self, name)
            parts = urlsplit(url)
            wanted = ("ws", "wss") if name.endswith("stream_url") else ("http", "https")
            if parts.scheme not in wanted or not parts.hostname:
                raise ValueError(f"{name} must be an {'/'.join(wanted)} URL, got {url!r}")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        return self

    @property
    def base(self) -> str:
        """``base_url`` without a trailing slash (alpaca-py appends ``/v2/...``)."""
        return self.base_url.rstrip("/")

    @property
    def data(self) -> str:
        return self.data_url.rstrip("/")

    @property
    def data_stream(self) -> str:
        """The market-data websocket of ``feed``, e.g. ``wss://stream.data.alpaca.markets/v2/iex``."""
        return f"{self.data_stream_url.rstrip('/')}/v2/{self.feed}"

    @property
    def is_paper_endpoint(self) -> bool:
        """Whether trading and the stream go to Alpaca's paper endpoints or a loopback emulator."""
        ok_base = self.base == PAPER_BASE_URL or is_loopback(self.base_url)
        ok_stream = self.stream_url.rstrip("/") == PAPER_STREAM_URL or is_loopback(self.stream_url)
        return ok_base and ok_stream

    def check_endpoint(self) -> None:
        """Refuse a live endpoint before connecting (ConfigError naming ``alpaca.allow_live``)."""
        if not self.is_paper_endpoint and not self.allow_live:
            raise ConfigError(f"{self.base_url} / {self.stream_url} is not Alpaca's paper endpoint nor a loopback "
                              "emulator: live trading is refused; set alpaca.allow_live to true to use it",
                              key="alpaca.allow_live")


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials(settings: Settings) -> tuple[SecretStr, SecretStr]:
    """The key pair from the environment; ConfigError naming both variables if either is missing."""
    key, secret = settings.secret(KEY_ENV), settings.secret(SECRET_ENV)
    if key is None or secret is None:
        missing = [name for name, value in ((KEY_ENV, key), (SECRET_ENV, secret)) if value is None]
        raise ConfigError(f"the alpaca broker needs {KEY_ENV} and {SECRET_ENV} in the environment "
                          f"(missing: {', '.join(missing)}); keys are never read from settings files",
                          key="alpaca")
    return key, secret
