"""``python -m workbench.emulators.alpaca`` prints the three URLs, serves alpaca-py, and remembers with --db."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.alpaca.conftest import KEY, SECRET

pytest.importorskip("alpaca")
pytestmark = pytest.mark.timeout(90)


@contextmanager
def _emulator(db: Path, *extra: str) -> Iterator[dict[str, str]]:
    env = {**os.environ, "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "workbench.emulators.alpaca", "--port", "0", "--db", str(db),
                             "--log-level", "WARNING", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        urls = dict(re.findall(r"\b(base_url|data_url|stream_url|data_stream_url):\s+(\S+)", "".join(lines)))
        assert set(urls) == {"base_url", "data_url", "stream_url", "data_stream_url"}, (lines, proc.poll())
        assert all("127.0.0.1" in u for u in urls.values())
        yield urls
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=5)
    assert proc.returncode == 0  # SIGTERM stops it cleanly


def test_cli_prints_urls_and_a_restart_knows_earlier_orders(tmp_path: Path) -> None:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

    db = tmp_path / "ledger.sqlite"
    with _emulator(db) as urls:
        client = TradingClient(KEY, SECRET, url_override=urls["base_url"])
        filled = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=3, side="buy", time_in_force="day",
                                                        client_order_id="before-restart"))
        resting = client.submit_order(LimitOrderRequest(symbol="AAPL", qty=1, side="buy", time_in_force="gtc",
                                                        limit_price=1))
    with _emulator(db) as urls:
        client = TradingClient(KEY, SECRET, url_override=urls["base_url"])
        again = client.get_order_by_client_id("before-restart")
        assert again.id == filled.id and float(again.filled_qty) == 3
        assert [o.id for o in client.get_orders(GetOrdersRequest(status="open"))] == [resting.id]
        assert float(client.get_open_position("AAPL").qty) == 3
        fills = client.get("/account/activities/FILL", {"direction": "asc"})
        assert [f["order_id"] for f in fills] == [str(filled.id)]


def test_cli_refuses_to_start_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY")}
    out = subprocess.run([sys.executable, "-m", "workbench.emulators.alpaca", "--port", "0", "--db",
                          str(tmp_path / "x.sqlite")], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "ALPACA_API_KEY" in out.stderr and "ALPACA_SECRET_KEY" in out.stderr
    assert "--key" in out.stderr and "--secret" in out.stderr and "key=" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "ValueError" not in out.stderr
    # one of the pair given: still refused, naming what is missing
    out = subprocess.run([sys.executable, "-m", "workbench.emulators.alpaca", "--port", "0", "--db",
                          str(tmp_path / "x.sqlite"), "--key", "PKONLYKEY1"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 2 and "ALPACA_SECRET_KEY" in out.stderr and "--secret" in out.stderr, out.stderr


def test_the_emulator_without_keys_is_a_config_error_naming_both_ways(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench
    from workbench.emulators.alpaca import AlpacaEmulator

    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # a refused emulator leaves no temporary ledger behind
    for kwargs in ({}, {"key": "PKONLYKEY1"}, {"secret": "only-a-secret"}, {"key": "", "secret": ""}):
        with pytest.raises(workbench.ConfigError) as info:
            AlpacaEmulator(**kwargs)
        text = str(info.value)
        assert type(info.value) is workbench.ConfigError
        assert all(word in text for word in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "key=", "secret=")), text
        assert "PKONLYKEY1" not in text and "only-a-secret" not in text
    assert list(tmp_path.iterdir()) == []


def test_readme_python_example_and_no_temp_leak(keys: tuple[str, str], settings_dict: dict) -> None:
    """The README's notebook recipe: an emulator with its own engine, stopped by the with block."""
    import workbench
    from workbench.emulators.alpaca import AlpacaEmulator

    with AlpacaEmulator(key=keys[0], secret=keys[1]) as emu:
        ledger = Path(emu.engine.config.db_path)
        broker = workbench.connect("alpaca", settings={**settings_dict, "alpaca": emu.settings()})
        try:
            assert broker.place_market_order("AAPL", 1, "buy").filled_qty == 1
        finally:
            broker.close()
    assert not ledger.parent.exists()


def test_a_failed_start_or_a_dropped_emulator_leaves_no_temporary_ledger(keys: tuple[str, str]) -> None:
    import gc
    import socket

    from workbench.emulators.alpaca import AlpacaEmulator

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        emu = AlpacaEmulator(key=keys[0], secret=keys[1], port=busy.getsockname()[1])  # its own engine
        engine, ledger = emu.engine, Path(emu.engine.config.db_path)
        with pytest.raises(OSError):
            emu.start_in_thread()
    assert engine.closed and not ledger.parent.exists()

    never_started = AlpacaEmulator(key=keys[0], secret=keys[1])
    engine, ledger = never_started.engine, Path(never_started.engine.config.db_path)
    del never_started
    gc.collect()
    assert engine.closed and not ledger.parent.exists()


def test_cli_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    env = {**os.environ, "ALPACA_API_KEY": KEY, "ALPACA_SECRET_KEY": SECRET}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = subprocess.run([sys.executable, "-m", "workbench.emulators.alpaca", "--port",
                              str(busy.getsockname()[1]), "--db", str(tmp_path / "x.sqlite")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "cannot listen" in out.stderr and "Traceback" not in out.stderr
