"""workbench: a Jupyter-first research and paper-trading workbench.

Write trading code once, run it against any broker::

    import workbench
    broker = workbench.connect()            # the embedded paper broker by default
    broker.get_history("AAPL", days=30)     # DataFrame, tz-aware UTC index
    broker.place_market_order("AAPL", 10, "buy")
    broker.get_positions()
"""

from __future__ import annotations

from .adapters.base import AdapterBase, Capabilities, Subscription
from .adapters.factory import get_adapter, known_adapters, register_adapter
from .core.enums import Feature, OrderStatus, OrderType, Side, TimeInForce
from .core.errors import (
    AuthError,
    BrokerClosed,
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    DataEntitlementError,
    InsufficientFunds,
    InvalidInput,
    InvalidOrder,
    MarketClosed,
    NotSupported,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RequestTimeout,
    SymbolNotFound,
    WorkbenchError,
)
from .core.models import AccountInfo, Bar, FillEvent, MarketClock, NeutralOrder, Order, Position, Quote
from .core.settings import Settings, load_settings
from .facade import Broker, connect

__version__ = "0.1.0"

__all__ = [
    "connect", "Broker", "get_adapter", "register_adapter", "known_adapters", "load_settings", "Settings",
    "AdapterBase", "Capabilities", "Subscription",
    "Side", "OrderType", "TimeInForce", "OrderStatus", "Feature",
    "NeutralOrder", "Order", "FillEvent", "Position", "AccountInfo", "Bar", "Quote", "MarketClock",
    "WorkbenchError", "ConfigError", "InvalidInput", "InvalidOrder", "NotSupported", "SymbolNotFound",
    "OrderNotFound", "BrokerError", "BrokerUnavailable", "BrokerClosed", "RequestTimeout", "RateLimited", "AuthError",
    "DataEntitlementError", "OrderRejected", "InsufficientFunds", "MarketClosed",
]
