"""An Alpaca REST + trade_updates emulator backed by the paper engine.

The real alpaca-py (0.44.0) clients talk to it over loopback, so Alpaca code runs without an account or
internet. One aiohttp server serves the trading API, the market-data API and the stream:

>>> with AlpacaEmulator(key="PKTEST", secret="s3cret") as emu:   # or .start_in_thread() / .stop_thread()
...     TradingClient("PKTEST", "s3cret", url_override=emu.base_url).get_account()
...     broker = workbench.connect("alpaca", settings={"alpaca": emu.settings()})

:func:`build_engine` makes a paper engine for it from workbench settings (a temporary ledger unless
``db`` is given).
"""

from .server import AlpacaEmulator, Fault

__all__ = ["AlpacaEmulator", "Fault", "build_engine"]


def build_engine(settings=None, db=None, tick_interval=None):  # type: ignore[no-untyped-def]
    """A PaperEngine priced by the settings' market-data provider, over ``db`` (default: a temporary file).

    The emulator never opens the paper broker's own ledger (``paper.db_path``): one engine owns a ledger.
    """
    import tempfile
    from pathlib import Path

    from workbench.core.settings import load_settings
    from workbench.marketdata import get_provider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    resolved = load_settings(settings)
    fields = resolved.section("paper")
    fields["db_path"] = str(db) if db is not None else str(Path(tempfile.mkdtemp(prefix="alpaca-emulator-"))
                                                             / "ledger.sqlite")
    if tick_interval is not None:
        fields["tick_interval"] = tick_interval
    config = PaperConfig.model_validate(fields)
    return PaperEngine(config, get_provider(resolved))
