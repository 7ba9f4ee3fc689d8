"""``python -m workbench.emulators.tws --port 4002 [--server-version 178] [--host 127.0.0.1] [--db PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path

from .server import DEFAULT_SERVER_VERSION, TwsEmulator


def build_engine(db: str | None, tick_interval: float):
    from workbench.paper.config import PaperConfig
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.engine import PaperEngine

    if db is None:
        db = str(Path(tempfile.mkdtemp(prefix="tws-emulator-")) / "paper.sqlite")
    config = PaperConfig(db_path=db, tick_interval=tick_interval)
    return PaperEngine(config, SimProvider())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workbench.emulators.tws",
                                     description="TWS / IB Gateway emulator backed by the paper engine")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4002)
    parser.add_argument("--server-version", type=int, default=DEFAULT_SERVER_VERSION)
    parser.add_argument("--db", default=None, help="paper ledger file (default: a temporary file)")
    parser.add_argument("--account", default="DU1234567")
    parser.add_argument("--tick-interval", type=float, default=1.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--no-live-data", action="store_true",
                        help="act like an account without a market-data subscription (354; delayed data works)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = build_engine(args.db, args.tick_interval)
    emulator = TwsEmulator(engine, host=args.host, port=args.port, server_version=args.server_version,
                           accounts=(args.account,), tick_interval=args.tick_interval,
                           live_data=not args.no_live_data)

    def started(emu: TwsEmulator) -> None:
        print(f"TWS emulator listening on {emu.host}:{emu.port} (server version {emu.server_version}, "
              f"ledger {engine.config.db_path})", flush=True)

    try:
        asyncio.run(emulator.serve_forever(started))
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()


if __name__ == "__main__":
    main()
