"""The factory: one registry, lazy SDK imports, entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import workbench
from workbench.adapters.factory import registry


def test_unknown_broker_lists_the_known_ones() -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.get_adapter("nope")
    assert "paper" in str(info.value) and "nope" in str(info.value)


def test_import_workbench_imports_no_broker_sdk() -> None:
    code = ("import sys, workbench; b = workbench.connect(); b.get_history('AAPL', days=5); b.close(); "
            "print(sorted(m for m in ('ib_async', 'ib_insync', 'alpaca', 'yfinance', 'exchange_calendars') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


_PLUGIN = '''
"""A third-party broker: one file. It reuses the paper engine under another name."""
from workbench.adapters.paper.adapter import PaperAdapter


class DemoAdapter(PaperAdapter):
    name = "demo"
'''


def test_a_new_adapter_is_one_file_plus_its_registration(tmp_path: Path, settings_dict: dict) -> None:
    """Install a plugin the way pip would (module + dist-info entry point) in a fresh interpreter."""
    (tmp_path / "wb_demo_adapter.py").write_text(textwrap.dedent(_PLUGIN))
    dist = tmp_path / "wb_demo-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wb-demo\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[workbench.adapters]\ndemo = wb_demo_adapter:DemoAdapter\n")
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import workbench
        assert "demo" in workbench.known_adapters()
        b = workbench.connect("demo", settings={settings_dict!r})
        order = b.place_market_order("AAPL", 1, "buy")
        print(b.name, order.broker, order.status, list(b.get_positions().index))
        b.close()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["demo", "paper", "FILLED", "['AAPL']"]


def test_register_adapter_in_code(settings_dict: dict) -> None:
    from workbench.adapters.paper.adapter import PaperAdapter

    class Inline(PaperAdapter):
        name = "inline"

    workbench.register_adapter("inline", Inline, replace=True)
    try:
        assert "inline" in workbench.known_adapters()
        assert isinstance(workbench.get_adapter("inline", settings_dict), Inline)
        with pytest.raises(workbench.ConfigError):
            workbench.register_adapter("inline", PaperAdapter)  # no silent override
    finally:
        registry._targets.pop("inline", None)


def test_order_payload_broker_field_is_validated(settings_dict: dict) -> None:
    """The model checks the name's shape; the Broker the order is sent to checks it against the registry."""
    order = workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1, broker="IBKR")
    assert order.broker == "ib"  # the canonical spelling
    with pytest.raises(workbench.InvalidOrder) as info:
        workbench.NeutralOrder(symbol="AAPL", side="buy", qty=1, broker="no such broker!")
    assert info.value.field == "broker"
    with workbench.connect(settings=settings_dict) as broker:
        with pytest.raises(workbench.InvalidOrder) as info:
            broker.place_order(symbol="AAPL", side="buy", qty=1, broker="robinhood")
        assert info.value.field == "broker" and "paper" in str(info.value) and "unknown" in str(info.value)
        assert broker.get_orders_history().empty


def test_an_unknown_broker_names_where_the_name_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          settings_dict: dict) -> None:
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect("robinhood", settings=settings_dict)
    assert "broker argument" in str(info.value) and info.value.key == "broker"

    monkeypatch.setenv("BROKER_TYPE", "robinhood")
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=settings_dict)
    assert info.value.file == "environment variable BROKER_TYPE" and info.value.key == "default_broker"
    assert "BROKER_TYPE" in str(info.value) and "paper" in str(info.value)
    monkeypatch.delenv("BROKER_TYPE")

    path = tmp_path / "settings.json"
    path.write_text('{"default_broker": "robinhood"}')
    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings=str(path))
    assert info.value.file == str(path) and info.value.key == "default_broker" and str(path) in str(info.value)

    with pytest.raises(workbench.ConfigError) as info:
        workbench.connect(settings={**settings_dict, "default_broker": "robinhood"})
    assert info.value.file == "settings argument"


def test_a_plugin_section_is_validated_at_load_once_registered(settings_dict: dict) -> None:
    from pydantic import BaseModel, ConfigDict

    class DemoConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        region: str = "eu"

    from workbench.adapters.paper.adapter import PaperAdapter
    from workbench.core.settings import SCHEMA

    class Demo(PaperAdapter):
        name = "demo2"

    try:
        workbench.register_adapter("demo2", Demo, replace=True, config=DemoConfig)
        assert workbench.load_settings({"demo2": {"region": "us"}}).section_model("demo2", DemoConfig).region == "us"
        with pytest.raises(workbench.ConfigError) as info:
            workbench.load_settings({"demo2": {"regoin": "us"}})
        assert info.value.key == "demo2.regoin"
    finally:
        SCHEMA._models.pop("demo2", None)


def test_unknown_adapter_keyword_is_typed(settings_dict: dict) -> None:
    with pytest.raises(workbench.InvalidInput) as info:
        workbench.connect(settings=settings_dict, provder=None)
    assert info.value.field == "provder" and "provider" in str(info.value)
