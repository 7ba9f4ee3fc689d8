"""The ``widgets`` settings section's model, SDK-free so every settings load validates it.

It lives here, not in :mod:`workbench.widgets` (whose package imports ipywidgets), for the same reason
the adapters keep their config models in SDK-free modules: a typo under ``widgets`` is a ConfigError when
settings load, whether or not the desk is ever opened. :mod:`workbench.widgets.config` re-exports it.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WidgetsConfig"]


class WidgetsConfig(BaseModel):
    """Desk behaviour: the fat-finger guard and the blotter's price refresh.

    - ``confirm_notional``: an order worth more than this (in the account currency) needs a confirm click.
    - ``confirm_away_pct``: so does a limit/stop price more than this many percent away from the last price.
    - ``refresh_seconds``: how often the blotter re-marks positions to market (orders and fills are
      event-driven and do not wait for it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    confirm_notional: Decimal = Field(default=Decimal(50000), gt=0, allow_inf_nan=False)
    confirm_away_pct: Decimal = Field(default=Decimal(5), gt=0, allow_inf_nan=False)
    refresh_seconds: float = Field(default=5.0, gt=0, le=86_400, allow_inf_nan=False)
