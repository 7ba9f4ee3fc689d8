"""Settings of the ``paper`` section."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.core.settings import PathSetting

#: Bounds on money settings: beyond them the ledger's Decimal arithmetic (quantized to 0.0001) overflows
#: its precision and an order fails with decimal.InvalidOperation instead of at load.
MAX_CASH, MAX_FEE = Decimal("1e15"), Decimal("1e6")


class Commission(BaseModel):
    """Commission of one order: ``max(minimum, per_order + per_share * filled qty)``.

    It is charged once per order, fill by fill: each fill costs what it adds to the order's total, so an
    order costs the same whether it fills at once or in ten partial fills.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    per_order: Decimal = Field(default=Decimal(0), ge=0, le=MAX_FEE, allow_inf_nan=False)
    per_share: Decimal = Field(default=Decimal(0), ge=0, le=MAX_FEE, allow_inf_nan=False)
    minimum: Decimal = Field(default=Decimal(0), ge=0, le=MAX_FEE, allow_inf_nan=False)

    def for_order(self, filled: Decimal) -> Decimal:
        """The order's total commission once ``filled`` shares have executed (0 before any fill)."""
        if not filled or self.per_order == self.per_share == self.minimum == 0:
            return Decimal(0)
        return max(self.minimum, self.per_order + self.per_share * filled).quantize(Decimal("0.0001"))

    def for_fill(self, qty: Decimal) -> Decimal:
        """The commission of an order that fills ``qty`` in one go."""
        return self.for_order(qty)


class PaperConfig(BaseModel):
    """The embedded paper broker. ``commission`` may be a number (flat, per order) or an object."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    db_path: PathSetting = "~/.workbench/paper.sqlite"
    starting_cash: Decimal = Field(default=Decimal(100000), gt=0, le=MAX_CASH, allow_inf_nan=False)
    slippage_bps: Decimal = Field(default=Decimal(1), ge=0, le=1000)
    commission: Commission = Commission()
    allow_short: bool = False
    enforce_market_hours: bool = False
    partial_fill_fraction: Decimal = Field(default=Decimal(0), ge=0, le=1)
    tick_interval: float = Field(default=1.0, gt=0, le=86_400, allow_inf_nan=False)  # (longer waits overflow timers)
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
