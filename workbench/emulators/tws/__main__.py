"""``python -m workbench.emulators.tws``: a TWS / IB Gateway emulator on a port (see ``--help``).

The paper engine behind it prices and charges as the configured paper broker: the ``paper`` and
``market_data`` sections of the settings (``--settings PATH``, else the file workbench finds as usual)
give commission, slippage, starting cash, partial fills, market hours and the price provider. The
ledger is ``--db PATH`` (kept across restarts) or in memory (nothing is left behind); the paper
broker's own ``paper.db_path`` is never used, since one ledger has one owner.

A bad flag, a bad settings file or a port already in use ends it with one line naming the cause on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import NoReturn

from workbench.core.errors import InvalidInput, WorkbenchError

from . import build_engine
from .server import (
    DEFAULT_SERVER_VERSION,
    MAX_SERVER_VERSION,
    MAX_TICK_INTERVAL,
    MIN_SERVER_VERSION,
    MIN_TICK_INTERVAL,
    TwsEmulator,
    check_server_version,
    check_tick_interval,
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line (``--help`` shows the usage), exit status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _server_version(text: str) -> int:
    version = _number(text, int)
    try:
        check_server_version(version)
    except InvalidInput:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version the emulator speaks: "
                                         f"{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}, except 158 and 163") from None
    return version


def _tick_interval(text: str) -> float:
    seconds = _number(text, float)
    try:
        check_tick_interval(seconds)
    except InvalidInput:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give seconds between price updates, {MIN_TICK_INTERVAL:g}..{MAX_TICK_INTERVAL:g}; the "
            f"emulator always runs its ticker, since resting orders fill only on it (in Python, "
            f"TwsEmulator(tick_interval=None) runs none and prices move when you call emu.tick())") from None
    return seconds


def _port(text: str) -> int:
    port = _number(text, int)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0..65535; 0 = any free port)")
    return port


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m workbench.emulators.tws",
                description="TWS / IB Gateway emulator backed by the paper engine (offline)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=4002, help="port (default 4002, IB Gateway paper; 0 = any free)")
    p.add_argument("--server-version", type=_server_version, default=DEFAULT_SERVER_VERSION,
                   help=f"highest API version to negotiate, {MIN_SERVER_VERSION}..{MAX_SERVER_VERSION} except 158 "
                        f"and 163 (default {DEFAULT_SERVER_VERSION})")
    p.add_argument("--db", default=None, help="paper ledger file, kept across restarts (default: in memory)")
    p.add_argument("--settings", default=None,
                   help="workbench settings file: paper commission, slippage, cash ... and market data")
    p.add_argument("--margin", action="store_true",
                   help="a margin account (Reg T requirements, enforced: an order beyond them is refused with 201; "
                        "short selling allowed), as IB paper accounts are; default: a cash account (unless "
                        "paper.allow_short is set)")
    p.add_argument("--account", default="DU1234567", help="the paper account id (default DU1234567)")
    p.add_argument("--tick-interval", type=_tick_interval, default=None,
                   help=f"seconds between price updates, {MIN_TICK_INTERVAL:g}..{MAX_TICK_INTERVAL:g} (default: "
                        f"paper.tick_interval); resting orders fill on them, so there is no 0 (off)")
    p.add_argument("--no-live-data", action="store_true",
                   help="act like an account without a market-data subscription (354; delayed data works)")
    p.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                   help="what the emulator logs to stderr (default INFO: its start, dropped connections, requests "
                        "answered with an IB error)")
    return p


def _fail(message: str) -> NoReturn:
    print(f"python -m workbench.emulators.tws: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        engine = build_engine(args.db, args.settings, args.margin, args.tick_interval)
    except WorkbenchError as exc:
        _fail(str(exc))
    config = engine.config  # type: ignore[attr-defined]
    try:
        emulator = TwsEmulator(engine, host=args.host, port=args.port, server_version=args.server_version,
                               accounts=(args.account,), tick_interval=config.tick_interval,
                               live_data=not args.no_live_data, margin=config.allow_short)
    except InvalidInput as exc:  # paper.tick_interval from the settings (the flags were checked by the parser)
        engine.close()  # type: ignore[attr-defined]
        _fail(f"paper.{exc.field} in the settings (--{(exc.field or '').replace('_', '-')} overrides it): "
              f"{exc.message}")

    listening = False

    def started(emu: TwsEmulator) -> None:
        nonlocal listening
        listening = True
        print(f"TWS emulator listening on {emu.host}:{emu.port} (server version {emu.server_version}, "
              f"{'margin' if emu.margin else 'cash'} account {args.account}, ledger {config.db_path})", flush=True)

    try:
        asyncio.run(emulator.serve_forever(started))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, the host is not an address of this machine...
        if listening:  # not a listen failure: a real fault, with its traceback
            raise
        _fail(f"--host/--port: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    finally:
        engine.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
