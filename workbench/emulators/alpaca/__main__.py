"""``python -m workbench.emulators.alpaca --port 8001 [--settings PATH] [--db LEDGER] [--host 127.0.0.1]``.

Prints the URLs to put in the ``alpaca`` settings section (trading, market data, trade stream, market-data
stream). The key pair it accepts comes from
``ALPACA_API_KEY`` / ``ALPACA_SECRET_KEY`` (or ``--key`` / ``--secret``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from workbench.adapters.alpaca.config import KEY_ENV, SECRET_ENV
from workbench.core.errors import WorkbenchError

from .server import AlpacaEmulator, accepted_pair


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.emulators.alpaca",
                                     description="Alpaca REST + trade_updates emulator backed by the paper engine")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--settings", default=None, help="workbench settings file (paper engine, market data)")
    parser.add_argument("--db", default=None, help="ledger file; a restarted emulator knows its earlier orders "
                                                   "(default: a temporary file)")
    parser.add_argument("--key", default=None, help=f"accepted key id (default: ${KEY_ENV})")
    parser.add_argument("--secret", default=None, help=f"accepted secret (default: ${SECRET_ENV})")
    parser.add_argument("--tick-interval", type=float, default=1.0, help="seconds between price updates")
    parser.add_argument("--page-limit", type=int, default=10_000, help="bars per page at most")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        key, secret = accepted_pair(args.key, args.secret, "--key and --secret")
        emulator = AlpacaEmulator(host=args.host, port=args.port, key=key, secret=secret,
                                  tick_interval=args.tick_interval, page_limit=args.page_limit,
                                  settings=args.settings, db=args.db)
    except (ValueError, WorkbenchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine = emulator.engine

    def started(emu: AlpacaEmulator) -> None:
        print(f"Alpaca emulator listening (ledger {engine.config.db_path}); put these in the alpaca settings:\n"
              f"  base_url:        {emu.base_url}\n  data_url:        {emu.data_url}\n"
              f"  stream_url:      {emu.stream_url}\n  data_stream_url: {emu.data_stream_url}", flush=True)

    try:
        asyncio.run(emulator.serve_forever(started))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, the host is not this machine's...
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
