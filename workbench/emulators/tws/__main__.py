"""``python -m workbench.emulators.tws``: a TWS / IB Gateway emulator on a port (see ``--help``).

The paper engine behind it prices and charges as the configured paper broker: the ``paper`` and
``market_data`` sections of the settings (``--settings PATH``, else the file workbench finds as usual)
give commission, slippage, starting cash, partial fills, market hours and the price provider. The
ledger is ``--db PATH`` (kept across restarts) or in memory (nothing is left behind); the paper
broker's own ``paper.db_path`` is never used, since one ledger has one owner.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from . import build_engine
from .server import DEFAULT_SERVER_VERSION, TwsEmulator


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench.emulators.tws",
                                description="TWS / IB Gateway emulator backed by the paper engine (offline)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4002, help="port (default 4002, IB Gateway paper; 0 = any free)")
    p.add_argument("--server-version", type=int, default=DEFAULT_SERVER_VERSION,
                   help=f"highest API version to negotiate, 157..178 (default {DEFAULT_SERVER_VERSION})")
    p.add_argument("--db", default=None, help="paper ledger file, kept across restarts (default: in memory)")
    p.add_argument("--settings", default=None,
                   help="workbench settings file: paper commission, slippage, cash ... and market data")
    p.add_argument("--margin", action="store_true",
                   help="a margin account (Reg T requirements, short selling allowed), as IB paper accounts are; "
                        "default: a cash account (unless paper.allow_short is set)")
    p.add_argument("--account", default="DU1234567", help="the paper account id (default DU1234567)")
    p.add_argument("--tick-interval", type=float, default=None,
                   help="seconds between price updates (default: paper.tick_interval)")
    p.add_argument("--no-live-data", action="store_true",
                   help="act like an account without a market-data subscription (354; delayed data works)")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> None:
    from workbench.core.errors import WorkbenchError

    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        engine = build_engine(args.db, args.settings, args.margin, args.tick_interval)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    config = engine.config  # type: ignore[attr-defined]
    emulator = TwsEmulator(engine, host=args.host, port=args.port, server_version=args.server_version,
                           accounts=(args.account,), tick_interval=config.tick_interval,
                           live_data=not args.no_live_data, margin=config.allow_short)

    def started(emu: TwsEmulator) -> None:
        print(f"TWS emulator listening on {emu.host}:{emu.port} (server version {emu.server_version}, "
              f"{'margin' if emu.margin else 'cash'} account {args.account}, ledger {config.db_path})", flush=True)

    try:
        asyncio.run(emulator.serve_forever(started))
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
