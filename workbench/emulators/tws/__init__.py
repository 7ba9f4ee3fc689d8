"""A TWS / IB Gateway socket-protocol emulator backed by the paper engine.

The real ib_async (2.1.0) and ib_insync (0.9.86) clients connect to it over loopback, so broker code
can be exercised offline. See ``/work/shared/reference/tws-protocol.md`` for the protocol.

>>> with TwsEmulator() as emu:                 # own engine, in-memory ledger, a free port on 127.0.0.1
...     ib.connect("127.0.0.1", emu.port, clientId=1)
...     broker = workbench.connect("ib", settings={"ib": emu.settings()})
>>> emu = TwsEmulator(engine, port=0).start_in_thread()    # or over your own PaperEngine; emu.stop_thread()
"""

from __future__ import annotations

from typing import Any

from .server import DEFAULT_SERVER_VERSION, MAX_SERVER_VERSION, MIN_SERVER_VERSION, TwsEmulator

__all__ = ["TwsEmulator", "DEFAULT_SERVER_VERSION", "MAX_SERVER_VERSION", "MIN_SERVER_VERSION", "build_engine"]


def build_engine(db: str | None = None, settings: Any = None, margin: bool = False,
                 tick_interval: float | None = None) -> Any:
    """A PaperEngine priced and charged as the configured paper broker (the ``paper`` and ``market_data``
    sections of ``settings``: a path, a dict, or the file workbench finds as usual), over ``db`` (None: in
    memory). ``paper.db_path`` is never used: the paper broker's ledger has one owner. ``margin`` allows
    short selling (an IB paper margin account). A bad ``tick_interval`` raises ConfigError
    (``paper.tick_interval``), as the same value in the settings would."""
    from pydantic import ValidationError

    from workbench.core.errors import ConfigError, shown_input, validation_message
    from workbench.core.settings import load_settings
    from workbench.marketdata import get_provider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    resolved = load_settings(settings)
    paper = resolved.section_model("paper", PaperConfig)
    update: dict[str, object] = {"db_path": db or ":memory:", "allow_short": paper.allow_short or margin}
    if tick_interval is not None:
        update["tick_interval"] = tick_interval
    try:  # validated (model_copy(update=...) would not check the overrides)
        config = PaperConfig.model_validate({**paper.model_dump(), **update})
    except ValidationError as exc:  # only an override can be bad: the rest was validated at load
        details = exc.errors(include_url=False)
        first = details[0]
        raise ConfigError(f"invalid setting: {validation_message(first)} (got {shown_input(first.get('input'))})",
                          key="paper." + ".".join(map(str, first["loc"])), errors=details) from None
    return PaperEngine(config, get_provider(resolved))
