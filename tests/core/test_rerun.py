"""Re-running a notebook's connect cell: ``broker = workbench.connect(...)`` runs while the previous Broker is
still bound to ``broker`` (and IPython's output history keeps any Broker a cell displayed). The new connect
must work anyway: it shares what can be shared and replaces what cannot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.paper import shared


@pytest.fixture
def ipython() -> Iterator[Any]:
    """A real IPython shell (the kernel's): its displayhook fills ``Out`` and ``_`` as in a notebook."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        yield shell
    finally:
        shell.run_cell("for _b in [v for v in list(Out.values()) if isinstance(v, workbench.Broker)]: _b.close()")
        shell.reset(new_session=False)
        InteractiveShell.clear_instance()


def _cell(shell: Any, source: str) -> Any:
    result = shell.run_cell(source, store_history=True)
    result.raise_error()
    return result.result


def test_a_rerun_with_edited_paper_settings_replaces_brokers_ipython_still_holds(ipython: Any, isolated_env: Path
                                                                                  ) -> None:
    """It was refused ("close the Broker using it first"), and closing ``broker`` did not help: Out[n] kept a
    share of the engine with the old settings until the kernel restarted."""
    _cell(ipython, f"import workbench\ndb = {str(isolated_env)!r}")
    _cell(ipython, "broker = workbench.connect(settings={'paper': {'db_path': db, 'slippage_bps': 0}})\nbroker")
    _cell(ipython, "broker = workbench.connect(settings={'paper': {'db_path': db, 'slippage_bps': 0}})\nbroker")
    displayed = [v for v in ipython.user_ns["Out"].values() if isinstance(v, workbench.Broker)]
    assert len(displayed) == 2 and all(b.state == "connected" for b in displayed)  # same settings: shared
    assert shared.live_engines() == {str(isolated_env.resolve()): 2}

    _cell(ipython, "broker = workbench.connect(settings={'paper': {'db_path': db, 'slippage_bps': 5}})")
    new = ipython.user_ns["broker"]
    assert new.state == "connected" and new.adapter.engine.config.slippage_bps == 5
    assert all(b.closed for b in displayed) and shared.live_engines() == {str(isolated_env.resolve()): 1}
    with pytest.raises(workbench.BrokerClosed) as info:
        displayed[0].get_account()
    assert "later workbench.connect() took over the paper ledger" in str(info.value)
    assert "paper.slippage_bps" in str(info.value)
    new.place_market_order("AAPL", 1, "buy")  # the ledger is the same one, now with the new settings
    assert len(new.get_orders_history()) == 1


def test_paper_brokers_on_other_ledgers_or_equal_settings_are_left_alone(settings_dict: dict, tmp_path: Path) -> None:
    first = workbench.connect(settings=settings_dict)
    other = workbench.connect(settings={**settings_dict, "paper": {**settings_dict["paper"],
                                                                   "db_path": str(tmp_path / "other.sqlite"),
                                                                   "slippage_bps": 9}})
    again = workbench.connect(settings=settings_dict)
    assert not first.closed and not other.closed and again.adapter.engine is first.adapter.engine
    for broker in (first, other, again):
        broker.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Any]:
    pytest.importorskip("ib_async")
    from workbench.emulators.tws import TwsEmulator
    from workbench.marketdata.sim import SimProvider
    from workbench.paper.config import PaperConfig
    from workbench.paper.engine import PaperEngine

    engine = PaperEngine(PaperConfig(db_path=str(tmp_path / "gw.sqlite"), slippage_bps=0), SimProvider())
    emulator = TwsEmulator(engine, port=0, server_version=178, tick_interval=0.02).start_in_thread()
    try:
        yield emulator
    finally:
        emulator.stop_thread()
        engine.close()


def test_rerunning_an_ib_connect_cell_replaces_the_previous_session(settings_dict: dict, gateway: Any) -> None:
    """The gateway takes one session per client id: the re-run's connect failed (error 326, then a timeout)
    because the previous Broker, still bound to ``broker``, held the id."""
    settings = {**settings_dict, "request_timeout": 10, "ib": {"port": gateway.port, "client_id": 7}}
    broker = workbench.connect("ib", settings=settings)
    previous = broker
    broker = workbench.connect("ib", settings=settings)  # the re-run
    assert broker.state == "connected" and previous.closed
    with pytest.raises(workbench.BrokerClosed) as info:
        previous.get_account()
    assert "IB client id 7" in str(info.value)
    other_id = workbench.connect("ib", settings={**settings, "ib": {"port": gateway.port, "client_id": 8}})
    assert not broker.closed  # another client id coexists
    order = broker.place_market_order("AAPL", 1, "buy")
    assert broker.get_order(order.order_id).client_order_id == order.client_order_id
    other_id.close()
    broker.close()
