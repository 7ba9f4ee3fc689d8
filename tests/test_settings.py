"""Settings: discovery, merge order, environment overrides, secrets, typed errors."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import workbench
from workbench.core.log import get_logger
from workbench.core.settings import DEFAULTS, load_settings

REPO = Path(__file__).resolve().parents[1]


def test_repo_settings_json_is_the_embedded_default() -> None:
    assert json.loads((REPO / "settings.json").read_text()) == DEFAULTS


def test_defaults_without_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.source is None and settings.default_broker == "paper"
    assert settings.section("market_data")["provider"] == "sim"


def test_nearest_settings_file_and_env_pointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"request_timeout": 5}))
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    settings = load_settings()
    assert settings.source == str(tmp_path / "settings.json") and settings.request_timeout == 5
    assert settings.section("paper")["starting_cash"] == DEFAULTS["paper"]["starting_cash"]  # merged over defaults
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"request_timeout": 9}))
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(other))
    assert load_settings().request_timeout == 9


def test_precedence_file_then_env_then_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"ib": {"port": 7497, "host": "filehost"}}))
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(path))
    monkeypatch.setenv("IBKR_GATEWAY_HOST", "envhost")
    monkeypatch.setenv("IBKR_GATEWAY_PORT", "4002")
    monkeypatch.setenv("IBKR_CLIENT_ID", "17")
    settings = load_settings({"ib": {"client_id": 3}})
    ib = settings.section("ib")
    assert ib == {**DEFAULTS["ib"], "host": "envhost", "port": 4002, "client_id": 3}


def test_broker_type_env_and_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_TYPE", "IBKR")
    assert load_settings().default_broker == "ib"
    monkeypatch.setenv("BROKER_TYPE", "paper")
    assert load_settings().default_broker == "paper"


def test_bad_env_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBKR_GATEWAY_PORT", "not-a-port")
    with pytest.raises(workbench.ConfigError) as info:
        load_settings()
    assert info.value.key == "ib.port" and "IBKR_GATEWAY_PORT" in str(info.value)


def test_malformed_file_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"default_broker": "paper",,}')
    with pytest.raises(workbench.ConfigError) as info:
        load_settings(path)
    assert info.value.file == str(path) and "line 1" in str(info.value)


def test_bad_value_names_the_dotted_key(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"request_timeout": -1}))
    with pytest.raises(workbench.ConfigError) as info:
        load_settings(path)
    assert info.value.key == "request_timeout" and info.value.file == str(path)
    with pytest.raises(workbench.ConfigError) as info:
        load_settings({"paper": {"slippage_bps": "lots"}})  # sections are validated at load
    assert info.value.key == "paper.slippage_bps" and info.value.file == "settings argument"


def test_secrets_only_from_env_and_always_masked(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        load_settings({"alpaca": {"secret_key": "abc123"}})
    assert info.value.key == "alpaca.secret_key" and "abc123" not in str(info.value)
    monkeypatch.setenv("ALPACA_API_KEY", "PKTESTKEY12345")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s3cr3t-value-xyz")
    settings = load_settings()
    assert settings.secret("ALPACA_SECRET_KEY").get_secret_value() == "s3cr3t-value-xyz"
    assert "s3cr3t" not in repr(settings) and "PKTESTKEY" not in repr(settings)
    assert "s3cr3t" not in repr(settings.secret("ALPACA_SECRET_KEY"))
    log = get_logger("workbench.test")
    with caplog.at_level(logging.INFO, logger="workbench.test"):
        log.info("connecting with key %s and secret %s", "PKTESTKEY12345", "s3cr3t-value-xyz")
    assert "s3cr3t" not in caplog.text and "PKTESTKEY12345" not in caplog.text and "**********" in caplog.text


def test_unknown_market_data_provider() -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={"market_data": {"provider": "nope"}})
    assert info.value.key == "market_data.provider"


def test_typos_in_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        load_settings({"papr": {"allow_short": True}})
    assert info.value.key == "papr" and info.value.file == "settings argument"
    with pytest.raises(workbench.ConfigError) as info:
        load_settings({"market_data": {"provder": "yfinance"}})
    assert info.value.key == "market_data.provder"


def test_secrets_are_masked_in_errors_and_tracebacks(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("ALPACA_SECRET_KEY", "another-s3cret-789")
    load_settings()
    err = workbench.AuthError("rejected key another-s3cret-789", raw="body: another-s3cret-789")
    assert "another-s3cret" not in str(err) and "another-s3cret" not in err.raw
    log = get_logger("workbench.test")
    with caplog.at_level(logging.ERROR, logger="workbench.test"):
        try:
            raise RuntimeError("low-level failure with another-s3cret-789")
        except RuntimeError:
            log.exception("request failed")
    assert "another-s3cret" not in caplog.text and "request failed" in caplog.text


def test_the_widgets_section_is_validated_at_load_without_importing_ipywidgets(tmp_path: Path) -> None:
    """It was validated only when the desk read it: a typo there passed every load (and connect)."""
    code = textwrap.dedent("""
        import sys, workbench
        for bad, key in (({"widgets": {"confirm_notionl": 1}}, "widgets.confirm_notionl"),
                         ({"widgets": {"refresh_seconds": float("inf")}}, "widgets.refresh_seconds"),
                         ({"widgets": {"confirm_away_pct": "x"}}, "widgets.confirm_away_pct"),
                         ({"widgets": 5}, "widgets")):
            try:
                workbench.connect(settings=bad)
            except workbench.ConfigError as exc:
                assert exc.key == key and exc.file == "settings argument", (exc.key, exc.file)
            else:
                raise SystemExit(f"accepted {bad}")
        from workbench.core.widgets_config import WidgetsConfig
        loaded = workbench.load_settings({"widgets": {"refresh_seconds": 2}})
        assert loaded.section_model("widgets", WidgetsConfig).refresh_seconds == 2
        print(sorted(m for m in sys.modules if m.startswith(("ipywidgets", "workbench.widgets"))))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_unknown_provider_is_refused_at_load_naming_its_true_source(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """It was refused only when the provider was built, blamed on the settings file found on disk."""
    (tmp_path / "settings.json").write_text('{"paper": {"slippage_bps": 0}}', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(workbench.ConfigError) as info:
        load_settings({"market_data": {"provider": "yahoo"}})
    assert info.value.key == "market_data.provider" and info.value.file == "settings argument"
    assert "sim, yfinance" in str(info.value)
    assert load_settings({"market_data": {"provider": "YFinance"}}).data["market_data"]["provider"] == "YFinance"


def test_a_boolean_request_timeout_is_refused() -> None:
    """pydantic read ``true`` as a one-second timeout."""
    for value in (True, False):
        with pytest.raises(workbench.ConfigError) as info:
            load_settings({"request_timeout": value})
        assert info.value.key == "request_timeout"
    assert load_settings({"request_timeout": "5"}).request_timeout == 5.0


def _float_settings() -> list[str]:
    """Every float setting of every registered section, as a dotted key (``ib.connect_timeout``, ...)."""
    import workbench.adapters.factory  # noqa: F401  (fills the schema)
    from workbench.core.settings import SCHEMA

    keys = ["request_timeout"]
    for dotted, model in sorted(SCHEMA.models().items()):
        keys += [f"{dotted}.{name}" for name, field in model.model_fields.items() if field.annotation is float]
    return keys


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e300, "1e999"], ids=["inf", "nan", "1e300", "1e999"])
def test_no_float_setting_takes_infinity_or_an_absurd_value(value) -> None:
    """``request_timeout: inf`` was accepted and then broke every call; the same holds for every other
    duration, rate and threshold: one ConfigError naming the key, at load."""
    keys = _float_settings()
    assert {"ib.connect_timeout", "ib.reconnect_max_delay", "market_data.yfinance.ttl_seconds",
            "market_data.yfinance.requests_per_second", "paper.tick_interval"} <= set(keys)
    escaped = []
    for key in keys:
        settings: object = value
        for part in reversed(key.split(".")):
            settings = {part: settings}
        try:
            load_settings(settings)
        except workbench.ConfigError as exc:
            if exc.key != key:
                escaped.append((key, f"named {exc.key}"))
        else:
            escaped.append((key, "accepted"))
    assert escaped == []
