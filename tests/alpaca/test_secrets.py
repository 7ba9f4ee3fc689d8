"""The key pair never shows, not even in part: websocket debug logs, tracebacks with their locals."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

import pytest

import workbench
from tests.alpaca.conftest import KEY, SECRET

pytest.importorskip("alpaca")


def _pieces(secret: str, size: int = 8) -> set[str]:
    """Every ``size``-character piece of ``secret``: a truncated log line still leaks one of them."""
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def _leaks(text: str) -> set[str]:
    return {piece for piece in _pieces(SECRET) | _pieces(KEY) if piece in text}


def _verbose(exc: BaseException) -> str:
    """The traceback as IPython's verbose mode or ``pytest --showlocals`` shows it: with every frame's locals."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def test_websocket_debug_log_never_carries_the_key_pair(emulator: Any, connect_alpaca: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    broker = connect_alpaca()
    broker.get_account()
    broker.subscribe_market_data(["AAPL"], lambda quote: None).cancel()  # the market-data socket too (msgpack)
    records = [r.getMessage() for r in caplog.records]
    # Both auth frames, masked: replaced by the adapter's frame filter, or (a text frame) already masked by
    # workbench.core.log's record factory, which runs first, when the record is made.
    masked = [m for m in records if "frame carrying credentials" in m or "authenticate" in m and "**********" in m]
    assert len(masked) == 2, masked
    assert not {piece for m in records for piece in _leaks(m)}


def test_tracebacks_with_locals_never_show_the_key_pair(emulator: Any, connect_alpaca: Any,
                                                        monkeypatch: pytest.MonkeyPatch, settings_dict: dict) -> None:
    broker = connect_alpaca()
    emulator.fail_next("GET", "/v2/account", 401, {"code": 40110000, "message": "request is not authorized"})
    with pytest.raises(workbench.AuthError) as refused:  # an HTTP error answer from alpaca-py
        broker.get_account()
    assert refused.value.__cause__ is not None  # still raised from alpaca-py's APIError
    assert not _leaks(_verbose(refused.value))

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    section = {"base_url": f"http://127.0.0.1:{port}", "data_url": f"http://127.0.0.1:{port}",
               "stream_url": f"ws://127.0.0.1:{port}/stream", "timeout": 2}
    with pytest.raises(workbench.BrokerUnavailable) as unreachable:  # requests' ConnectionError underneath
        workbench.connect("alpaca", settings={**settings_dict, "alpaca": section})
    assert not _leaks(_verbose(unreachable.value))

    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET + "-but-wrong")
    with pytest.raises(workbench.AuthError) as wrong:  # refused while connect() holds the pair
        connect_alpaca()
    assert not _leaks(_verbose(wrong.value))
