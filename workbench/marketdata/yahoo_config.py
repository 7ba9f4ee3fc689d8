"""Settings of the ``market_data.yfinance`` section (light: validated at every settings load, with no
yfinance, pyarrow or cache import)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.settings import PathSetting

__all__ = ["YFinanceConfig"]


class YFinanceConfig(BaseModel):
    """``market_data.yfinance`` settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cache_dir: PathSetting = "~/.workbench/cache/yfinance"
    ttl_seconds: float = Field(default=900, ge=0, le=10 * 365 * 86_400, allow_inf_nan=False)
    quote_ttl_seconds: float = Field(default=15, ge=0, le=86_400, allow_inf_nan=False)
    max_workers: int = Field(default=4, ge=1, le=32)
    requests_per_second: float = Field(default=2.0, gt=0, le=10_000, allow_inf_nan=False)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0, le=3600, allow_inf_nan=False)  # (longer: timers overflow)
    timeout: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    progress: bool = True
