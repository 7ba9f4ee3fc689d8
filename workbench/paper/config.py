"""Settings of the ``paper`` section."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Commission(BaseModel):
    """Per-fill commission: ``max(minimum, per_order + per_share * qty)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    per_order: Decimal = Field(default=Decimal(0), ge=0)
    per_share: Decimal = Field(default=Decimal(0), ge=0)
    minimum: Decimal = Field(default=Decimal(0), ge=0)

    def for_fill(self, qty: Decimal) -> Decimal:
        if self.per_order == self.per_share == self.minimum == 0:
            return Decimal(0)
        return max(self.minimum, self.per_order + self.per_share * qty).quantize(Decimal("0.0001"))


class PaperConfig(BaseModel):
    """The embedded paper broker. ``commission`` may be a number (flat per fill) or an object."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    db_path: str = "~/.workbench/paper.sqlite"
    starting_cash: Decimal = Field(default=Decimal(100000), gt=0)
    slippage_bps: Decimal = Field(default=Decimal(1), ge=0, le=1000)
    commission: Commission = Commission()
    allow_short: bool = False
    enforce_market_hours: bool = False
    partial_fill_fraction: Decimal = Field(default=Decimal(0), ge=0, le=1)
    tick_interval: float = Field(default=1.0, gt=0)
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    account_id: str = Field(default="PAPER-0001", min_length=1)

    @field_validator("commission", mode="before")
    @classmethod
    def _flat_commission(cls, value: object) -> object:
        if isinstance(value, (int, float, str, Decimal)) and not isinstance(value, bool):
            return {"per_order": value}
        return value

    @property
    def db_file(self) -> Path | str:
        """The ledger path, ``~`` expanded (``:memory:`` stays as is)."""
        return self.db_path if self.db_path == ":memory:" else Path(self.db_path).expanduser()
