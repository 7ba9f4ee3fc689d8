"""Settings of the ``alpaca`` section (no SDK import: settings validate it even when alpaca-py is absent)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["AlpacaConfig"]


class AlpacaConfig(BaseModel):
    """``alpaca`` settings. Keys come only from ``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    paper: bool = True
    base_url: str = "https://paper-api.alpaca.markets"
    data_url: str = "https://data.alpaca.markets"
    stream_url: str = "wss://paper-api.alpaca.markets/stream"
    allow_live: bool = False
    feed: Literal["iex", "sip", "otc", "delayed_sip"] = "iex"
