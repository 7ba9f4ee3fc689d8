"""The ``widgets`` settings section."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.settings import Settings

__all__ = ["WidgetsConfig", "widgets_config"]


class WidgetsConfig(BaseModel):
    """Desk behaviour: the fat-finger guard and the blotter's price refresh.

    - ``confirm_notional``: an order worth more than this (in the account currency) needs a confirm click.
    - ``confirm_away_pct``: so does a limit/stop price more than this many percent away from the last price.
    - ``refresh_seconds``: how often the blotter re-marks positions to market (orders and fills are
      event-driven and do not wait for it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    confirm_notional: Decimal = Field(default=Decimal(50000), gt=0)
    confirm_away_pct: Decimal = Field(default=Decimal(5), gt=0)
    refresh_seconds: float = Field(default=5.0, gt=0)


def widgets_config(settings: Settings) -> WidgetsConfig:
    """The validated ``widgets`` section (ConfigError naming ``widgets.<key>`` when wrong)."""
    return settings.section_model("widgets", WidgetsConfig)
