"""Market-data providers: ``sim`` (seeded, offline, always labelled simulated) and ``yfinance``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from workbench.core.errors import ConfigError
from workbench.core.settings import Settings

from .base import MarketDataProvider

if TYPE_CHECKING:
    from .sim import SimProvider
    from .yahoo import YFinanceProvider

__all__ = ["MarketDataProvider", "SimProvider", "YFinanceProvider", "get_provider", "PROVIDERS"]

PROVIDERS = ("sim", "yfinance")


def get_provider(settings: Settings, clock: Callable[[], datetime] | None = None) -> MarketDataProvider:
    """The provider named by ``market_data.provider``."""
    name = str(settings.data.get("market_data", {}).get("provider", "sim")).lower()
    if name == "sim":
        from .sim import SimConfig, SimProvider

        return SimProvider.from_config(settings.section_model("market_data.sim", SimConfig), clock=clock)
    if name == "yfinance":
        try:
            from .yahoo import YFinanceConfig, YFinanceProvider
            import yfinance  # noqa: F401  (fail here, clearly, if the extra is missing)
        except ImportError as exc:
            raise ConfigError("market_data.provider 'yfinance' needs: pip install 'workbench[yfinance]'",
                              file=settings.source, key="market_data.provider") from exc
        return YFinanceProvider.from_config(settings.section_model("market_data.yfinance", YFinanceConfig),
                                            clock=clock)
    raise ConfigError(f"unknown market-data provider {name!r}; known: {', '.join(PROVIDERS)}",
                      file=settings.source, key="market_data.provider")


def __getattr__(name: str) -> object:
    if name == "SimProvider":
        from .sim import SimProvider

        return SimProvider
    if name == "YFinanceProvider":
        from .yahoo import YFinanceProvider

        return YFinanceProvider
    raise AttributeError(name)
