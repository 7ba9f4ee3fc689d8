"""README's examples run as written and say what they show (rule 10: keep README true)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import workbench
from workbench import OrderStatus

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _python_block(after_heading: str) -> str:
    section = README.split(after_heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_30_second_example_runs_and_shows_what_its_comments_say() -> None:
    code = _python_block("## 30 seconds in a notebook")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    broker: workbench.Broker = namespace["broker"]
    try:
        assert namespace["bars"].attrs["simulated"] is True and namespace["bars"].attrs["source"] == "sim"
        assert str(namespace["bars"].index.tz) == "UTC"
        assert namespace["order"].status is OrderStatus.FILLED
        limit = broker.get_order(namespace["limit"].order_id)
        assert limit.status is OrderStatus.CANCELLED and limit.filled_qty == 0  # it rested, then was cancelled
        assert "AAPL" in broker.get_positions().index
    finally:
        broker.close()


def test_the_ib_example_order_rests_against_the_emulator(tmp_path: Path) -> None:
    from workbench.emulators.tws import TwsEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    code = _python_block("### Interactive Brokers (`ib`)")
    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "gw.sqlite")), SimProvider())
    emulator = TwsEmulator(engine, port=0).start_in_thread()
    namespace: dict[str, Any] = {}
    try:
        code = code.replace('workbench.connect("ib")',
                            f'workbench.connect("ib", settings={{"ib": {{"port": {emulator.port}}}}})')
        exec(compile("import workbench\n" + code, "README.md", "exec"), namespace)
        order = namespace["broker"].get_order(namespace["order"].order_id)
        assert order.filled_qty == 0 and order.status in (OrderStatus.CANCELLED, OrderStatus.PENDING_CANCEL)
    finally:
        if "broker" in namespace:
            namespace["broker"].close()
        emulator.stop_thread()
        engine.close()
