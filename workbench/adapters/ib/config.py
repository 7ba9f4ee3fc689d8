"""Settings of the ``ib`` section, with the live-trading guard."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import ConfigError

__all__ = ["IBConfig", "LIVE_PORTS", "PAPER_ACCOUNT_PREFIX"]

#: IB Gateway 4001 and TWS 7496 are the live-trading ports (paper: 4002 / 7497).
LIVE_PORTS = frozenset({4001, 7496})
#: Paper-trading account ids start with DU (individual) or DF (advisor paper masters).
PAPER_ACCOUNT_PREFIX = ("DU", "DF")


class IBConfig(BaseModel):
    """``ib`` settings. Live endpoints and non-paper accounts are refused unless ``allow_live``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=4002, ge=1, le=65535)
    client_id: int = Field(default=1, ge=0)
    #: On error 326 (client id in use), try this many following ids (0: off, the error is final).
    client_id_fallback: int = Field(default=0, ge=0, le=32)
    #: On a reconnect, how long error 326 is retried (seconds): the gateway keeps our previous connection's client
    #: id until it notices that connection is gone. Then the error is final. A first connect never retries it.
    client_id_retry: float = Field(default=300.0, ge=0, le=86400)
    readonly: bool = False
    allow_live: bool = False
    account: str | None = None
    connect_timeout: float = Field(default=10.0, gt=0, le=3600, allow_inf_nan=False)
    reconnect_max_delay: float = Field(default=60.0, gt=0, le=3600, allow_inf_nan=False)  # the backoff's cap
    #: Without a live-data entitlement (error 354): serve delayed data, marked ``Quote.delayed``; False raises
    #: DataEntitlementError instead.
    delayed_data: bool = True
    sdk: Literal["auto", "ib_async", "ib_insync"] = "auto"  # auto: ib_async, else ib_insync

    def check_endpoint(self) -> None:
        """Refuse a live port before connecting (ConfigError naming ``ib.port``)."""
        if self.port in LIVE_PORTS and not self.allow_live:
            raise ConfigError(f"port {self.port} is a live-trading port; set ib.allow_live to true to use it "
                              "(paper: 4002 for IB Gateway, 7497 for TWS)", key="ib.port")

    def check_account(self, account: str) -> None:
        """Refuse a non-paper account after connecting (ConfigError naming ``ib.allow_live``)."""
        if not account.upper().startswith(PAPER_ACCOUNT_PREFIX) and not self.allow_live:
            raise ConfigError(f"account {account} is not a paper account (paper ids start with DU); "
                              "set ib.allow_live to true to trade it", key="ib.allow_live")
