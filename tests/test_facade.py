"""The generated notebook facade: sync + async twins, timeouts, misuse from callbacks."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import workbench
from workbench.adapters.base import AdapterBase
from workbench.adapters.paper.adapter import PaperAdapter
from workbench.facade import OPERATIONS
from tests.conftest import eventually


class SlowAdapter(PaperAdapter):
    """A paper adapter whose account call never returns (a hung gateway)."""

    name = "slow"
    cancelled = False

    async def get_account(self):  # type: ignore[override]
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            SlowAdapter.cancelled = True
            raise


def test_every_operation_has_sync_and_async_twins() -> None:
    for op in OPERATIONS:
        sync, twin = getattr(workbench.Broker, op.name), getattr(workbench.Broker, op.name + "_async")
        assert not inspect.iscoroutinefunction(sync) and inspect.iscoroutinefunction(twin)
        assert sync.__doc__, op.name
    params = inspect.signature(workbench.Broker.get_history).parameters
    assert list(params)[:3] == ["self", "symbol", "days"]  # the adapter's signature, for Jupyter help


def test_a_hung_call_times_out_instead_of_hanging_the_cell(settings_dict: dict) -> None:
    workbench.register_adapter("slow", SlowAdapter, replace=True)
    broker = workbench.connect("slow", settings={**settings_dict, "request_timeout": 0.3})
    try:
        with pytest.raises(workbench.RequestTimeout) as info:
            broker.get_account()
        assert info.value.retryable and isinstance(info.value, workbench.BrokerUnavailable)
        eventually(lambda: SlowAdapter.cancelled)  # the stuck work was cancelled too
        assert broker.get_market_price("AAPL") > 0  # and the broker still works
    finally:
        broker.close()


def test_sync_call_from_a_callback_on_the_workbench_loop_is_a_clear_error(settings_dict: dict) -> None:
    errors: list[BaseException] = []
    with workbench.connect(settings=settings_dict) as broker:

        def on_fill(fill: workbench.FillEvent) -> None:
            try:
                broker.get_account()
            except workbench.NotSupported as exc:  # typed, not a bare RuntimeError
                errors.append(exc)

        stop = broker.on_fill(on_fill)
        broker.place_market_order("AAPL", 1, "buy")
        eventually(lambda: errors)
        stop()
    assert "_async" in str(errors[0])


def test_async_twins_work_from_another_event_loop(settings_dict: dict) -> None:
    with workbench.connect(settings=settings_dict) as broker:

        async def main() -> tuple:
            order = await broker.place_market_order_async("MSFT", 2, "buy")
            positions = await broker.get_positions_async()
            return order, positions

        order, positions = asyncio.run(main())
    assert order.status is workbench.OrderStatus.FILLED
    assert positions.loc["MSFT", "qty"] == 2  # converted to a frame like the sync method


def test_adapter_is_exposed_and_context_manager_closes(settings_dict: dict) -> None:
    with workbench.connect(settings=settings_dict) as broker:
        assert isinstance(broker.adapter, AdapterBase) and broker.name == "paper"
        assert "connected" in repr(broker)
    assert not broker.is_connected()


def test_order_for_another_broker_is_refused(settings_dict: dict) -> None:
    with workbench.connect(settings=settings_dict) as broker:
        workbench.register_adapter("other", PaperAdapter, replace=True)
        with pytest.raises(workbench.InvalidOrder) as info:
            broker.place_order({"symbol": "AAPL", "side": "buy", "qty": 1, "broker": "other"})
        assert info.value.field == "broker"
        assert broker.get_orders_history().empty


def test_sub_penny_prices_are_refused_by_the_paper_broker(settings_dict: dict) -> None:
    with workbench.connect(settings=settings_dict) as broker:
        with pytest.raises(workbench.InvalidOrder) as info:
            broker.place_limit_order("AAPL", 1, "buy", "100.005")
        assert info.value.field == "limit_price"
        with pytest.raises(workbench.InvalidOrder) as info:
            broker.place_order(symbol="AAPL", side="sell", qty=1, order_type="stop", stop_price="99.999")
        assert info.value.field == "stop_price"
        assert broker.get_orders_history().empty
        assert broker.place_limit_order("AAPL", 1, "buy", "0.5001").status.is_open  # sub-dollar: 0.0001 ticks


class HungOrderAdapter(PaperAdapter):
    """A gateway that never acknowledges orders."""

    name = "hung"

    async def _place_order(self, order):  # type: ignore[override]
        await asyncio.Event().wait()


def test_an_order_timeout_names_the_client_order_id(settings_dict: dict) -> None:
    workbench.register_adapter("hung", HungOrderAdapter, replace=True)
    with workbench.connect("hung", settings={**settings_dict, "request_timeout": 0.3}) as broker:
        with pytest.raises(workbench.RequestTimeout) as info:
            broker.place_market_order("AAPL", 1, "buy", client_order_id="find-me-1")
    assert info.value.raw == "find-me-1" and "get_order('find-me-1')" in str(info.value)


def test_a_failing_fill_callback_does_not_stop_the_stream(settings_dict: dict) -> None:
    calls: list[str] = []

    def flaky(fill: workbench.FillEvent) -> None:
        calls.append(fill.exec_id)
        raise ValueError("user bug")

    with workbench.connect(settings=settings_dict) as broker:
        broker.on_fill(flaky)
        broker.place_market_order("AAPL", 1, "buy")
        broker.place_market_order("AAPL", 1, "buy")
        eventually(lambda: len(calls) == 2)


def test_reads_validate_their_arguments(settings_dict: dict) -> None:
    with workbench.connect(settings=settings_dict) as broker:
        broker.place_market_order("AAPL", 1, "buy")
        assert len(broker.get_fills(since="2000-01-01")) == 1
        assert broker.get_fills(since="2999-01-01").empty
        with pytest.raises(workbench.InvalidInput) as info:
            broker.get_fills(since="not a date")
        assert info.value.field == "since"
        with pytest.raises(workbench.InvalidInput) as info:
            broker.get_orders_history(limit=-1)
        assert info.value.field == "limit"
        quotes: list[workbench.Quote] = []
        sub = broker.subscribe_market_data("AAPL", quotes.append)  # a single symbol as a string
        assert sub.symbols == ("AAPL",)
        sub.cancel()
