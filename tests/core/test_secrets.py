"""Secrets never appear in any rendered part of an error, in a traceback, or in a log line, whatever the case."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

import workbench
from workbench.core.log import MASK, get_logger, mask_secrets, register_secret

SECRET = "sk-live-Qx7TopSecretValue"


def _rendered(exc: BaseException) -> str:
    """Everything a notebook or a log shows of ``exc``: str, repr, the full chained traceback, attributes."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for name in ("field", "key", "file", "code", "raw", "errors", "message"):
        parts.append(repr(getattr(exc, name, None)))
    return "\n".join(parts)


def _clean(text: str) -> bool:
    return SECRET.casefold() not in text.casefold() and "input_value" not in text


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ALPACA_SECRET_KEY", SECRET)
    register_secret(SECRET)
    return SECRET


def test_every_part_of_an_error_is_masked(secret_env: str) -> None:
    err = workbench.InvalidOrder(f"bad {SECRET}", field=f"x-{SECRET}", raw={"body": [SECRET.upper()]},
                                 code=f"c-{SECRET}", broker="paper")
    assert _clean(_rendered(err)) and MASK in str(err) and f"field=x-{MASK}" in str(err)
    config = workbench.ConfigError("nope", file=f"/home/{SECRET}/s.json", key=f"ib.{SECRET}")
    assert _clean(_rendered(config)) and config.key == f"ib.{MASK}" and config.field == config.key


def test_upper_cased_secret_is_masked(secret_env: str, settings_dict: dict) -> None:
    """A secret typed where a symbol goes comes back upper-cased in the SymbolNotFound message."""
    with workbench.connect(settings=settings_dict) as broker:
        for call in (lambda: broker.get_quote(SECRET.replace("_", "-")),
                     lambda: broker.place_market_order(SECRET, 1, "buy")):
            with pytest.raises(workbench.WorkbenchError) as info:
                call()
            assert _clean(_rendered(info.value)), _rendered(info.value)
    assert mask_secrets(SECRET.upper()) == MASK and mask_secrets(SECRET.swapcase()) == MASK


def test_validation_errors_do_not_chain_the_input(secret_env: str, settings_dict: dict) -> None:
    """No pydantic ``input_value='...'`` in the traceback: the detail stays on ``.errors``, masked."""
    with pytest.raises(workbench.InvalidOrder) as info:
        workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1, tif=SECRET)
    assert _clean(_rendered(info.value)) and info.value.errors[0]["input"] == MASK
    with pytest.raises(workbench.ConfigError) as config:
        workbench.load_settings({"ib": {"port": SECRET}})
    assert _clean(_rendered(config.value)) and config.value.errors[0]["input"] == MASK
    with pytest.raises(workbench.ConfigError) as unknown:
        workbench.load_settings({SECRET: 1})
    assert _clean(_rendered(unknown.value))


def test_a_facade_error_whose_cause_quotes_a_secret_drops_the_chain(secret_env: str, settings_dict: dict) -> None:
    from workbench.adapters.paper.adapter import PaperAdapter

    class Leaky(PaperAdapter):
        name = "leaky"

        async def get_account(self):  # type: ignore[override]
            try:
                raise RuntimeError(f"HTTP 401 for key {SECRET}")  # what an SDK might say
            except RuntimeError as exc:
                raise workbench.AuthError("rejected", broker=self.name) from exc

    workbench.register_adapter("leaky", Leaky, replace=True)
    with workbench.connect("leaky", settings=settings_dict) as broker:
        with pytest.raises(workbench.AuthError) as info:
            broker.get_account()
    assert _clean(_rendered(info.value)) and info.value.__cause__ is None


def test_logs_mask_every_case(secret_env: str, caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("workbench.test.secrets")
    with caplog.at_level(logging.INFO, logger="workbench.test.secrets"):
        log.info("symbol %s and %s", SECRET.upper(), SECRET.lower())
    assert SECRET.casefold() not in caplog.text.casefold() and caplog.text.count(MASK) == 2


def _first_load(tmp_path: Path, env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: nothing registered yet, as at a kernel's first cell."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("IBKR_", "ALPACA_", "BROKER_TYPE"))}
    full.update(env, HOME=str(tmp_path))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=full, cwd=tmp_path)


PRINT_ERROR = """
    import traceback, workbench
    try:
        {call}
    except workbench.WorkbenchError as exc:
        print("".join(traceback.format_exception(exc)), exc.field, getattr(exc, "key", None), exc.errors)
    else:
        raise SystemExit("no error")
"""


@pytest.mark.parametrize(("env", "call"), [
    # The first settings load itself fails on a value that is the secret.
    ({"ALPACA_SECRET_KEY": SECRET}, f"workbench.load_settings({{'ib': {{'host': 5, 'port': {SECRET!r}}}}})"),
    # An IBKR_* value (read before anything validated) that is a secret, quoted by the env-override error.
    ({"IBKR_API_TOKEN": SECRET, "IBKR_CLIENT_ID": SECRET}, "workbench.load_settings()"),
    ({"IBKR_PASSWORD": SECRET.lower(), "IBKR_GATEWAY_PORT": SECRET.upper()}, "workbench.connect('ib')"),
    ({"APCA_API_SECRET_KEY": SECRET}, f"workbench.NeutralOrder(symbol='AAPL', side='buy', qty={SECRET!r})"),
])
def test_secrets_are_masked_from_the_first_load_on(tmp_path: Path, env: dict[str, str], call: str) -> None:
    out = _first_load(tmp_path, env, PRINT_ERROR.format(call=call))
    assert out.returncode == 0, out.stderr
    assert _clean(out.stdout + out.stderr), out.stdout
    assert MASK in out.stdout


def test_settings_file_values_are_masked_too(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"ib": {"client_id": SECRET}}))
    out = _first_load(tmp_path, {"ALPACA_API_KEY": SECRET},
                      PRINT_ERROR.format(call=f"workbench.connect(settings={str(path)!r})"))
    assert out.returncode == 0, out.stderr
    assert _clean(out.stdout) and "ib.client_id" in out.stdout and str(path) in out.stdout


def test_sdk_loggers_are_masked_too(secret_env: str, caplog: pytest.LogCaptureFixture) -> None:
    """ib_async, alpaca-py, websockets and urllib3 log through their own loggers, not workbench's."""
    with caplog.at_level(logging.DEBUG):
        for name in ("ib_async.client", "alpaca.trading.stream", "websockets.client", "urllib3.connectionpool"):
            logging.getLogger(name).debug("header %s", SECRET.upper())
        try:
            raise RuntimeError(f"HTTP 401 for {SECRET}")
        except RuntimeError:
            logging.getLogger("some.sdk").exception("request failed")
    assert SECRET.casefold() not in caplog.text.casefold()
    mine = [r for r in caplog.records if r.name.endswith(("ib_async.client", "alpaca.trading.stream",
                                                          "websockets.client", "urllib3.connectionpool", "some.sdk"))]
    assert len(mine) >= 5 and all(MASK in r.getMessage() or MASK in (r.exc_text or "") for r in mine)


def test_the_alpaca_sdk_at_debug_level_logs_no_part_of_the_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """alpaca-py over loopback with every logger at DEBUG (what one turns on to debug a connection):
    websockets logs the authentication frame shortened to its head and last 24 characters, the second half
    of the 40-character secret key (masked twice over: the adapter's frame filter, and the record factory
    for any logger)."""
    pytest.importorskip("alpaca")
    from workbench.emulators.alpaca import AlpacaEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    key, secret = "PKDEBUGKEY0000000001", "DebugSecret0123456789abcdefghijKLMNOPQRS"  # Alpaca's lengths: 20 and 40
    monkeypatch.setenv("ALPACA_API_KEY", key)
    monkeypatch.setenv("ALPACA_SECRET_KEY", secret)
    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "emulator.sqlite"), slippage_bps=0), SimProvider())
    emulator = AlpacaEmulator(engine, tick_interval=None).start_in_thread()
    try:
        with caplog.at_level(logging.DEBUG):
            settings = {"paper": {"db_path": str(tmp_path / "p.sqlite")}, "alpaca": emulator.settings()}
            with workbench.connect("alpaca", settings=settings) as broker:
                broker.on_fill(lambda fill: None)  # the trade_updates stream authenticates over websockets
                broker.place_market_order("AAPL", 1, "buy")
                broker.get_account()
    finally:
        emulator.stop_thread()
        engine.close()
    text = caplog.text.casefold()
    assert ("authenticate" in text or "frame carrying credentials" in text) and "/v2/account" in text  # logged
    for value in (key, secret):
        parts = {value.casefold()[i:i + 8] for i in range(len(value) - 7)}
        assert not [p for p in parts if p in text], f"part of {value!r} logged"


def test_short_secrets_are_masked_where_they_stand_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A four-letter rehearsal key masked inside every word mangled unrelated text (``latest`` ...)."""
    register_secret("qtest")
    register_secret("ab")  # too short to mask anything without masking everything
    text = "the latest qtests: key=qtest, QTEST; broker=paper ab"
    assert mask_secrets(text) == f"the latest qtests: key={MASK}, {MASK}; broker=paper ab"
    err = workbench.InvalidInput("symbol 'QTEST' is unknown to the contest feed", field="symbol")
    assert str(err).startswith(f"symbol '{MASK}' is unknown to the contest feed")
