"""A TWS / IB Gateway socket-protocol emulator backed by the paper engine.

The real ib_async (2.1.0) and ib_insync (0.9.86) clients connect to it over loopback, so broker code
can be exercised offline. See ``/work/shared/reference/tws-protocol.md`` for the protocol.

>>> emu = TwsEmulator(engine, port=0).start_in_thread()
>>> ib.connect("127.0.0.1", emu.port, clientId=1)
"""

from .server import DEFAULT_SERVER_VERSION, MAX_SERVER_VERSION, MIN_SERVER_VERSION, TwsEmulator

__all__ = ["TwsEmulator", "DEFAULT_SERVER_VERSION", "MAX_SERVER_VERSION", "MIN_SERVER_VERSION"]
