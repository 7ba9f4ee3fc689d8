"""Framing, greeting and builder layouts (no client needed)."""

from __future__ import annotations

import asyncio
import struct
from decimal import Decimal

import pytest

from workbench.emulators.tws import messages as m
from workbench.emulators.tws import messages_data as md
from workbench.emulators.tws.codec import encode, fmt, num, parse_greeting, read_frame, split, to_float


def test_frame_round_trip() -> None:
    frame = encode([9, 1, 42])
    assert frame == struct.pack(">I", 7) + b"9\x001\x0042\x00"
    assert split(frame[4:]) == ["9", "1", "42"]
    assert split(encode([4, 2, -1, 2104, ""])[4:]) == ["4", "2", "-1", "2104", ""]


def test_read_frame_handles_split_packets() -> None:
    async def run() -> bytes:
        reader = asyncio.StreamReader()
        data = encode([49, 1, 1700000000])
        reader.feed_data(data[:3])
        reader.feed_data(data[3:])
        return await read_frame(reader)

    assert split(asyncio.run(run())) == ["49", "1", "1700000000"]


def test_greeting() -> None:
    assert parse_greeting(b"v157..178") == (157, 178, "")
    assert parse_greeting(b"v157..178 +PACEAPI") == (157, 178, "+PACEAPI")
    assert parse_greeting(b"v176") == (176, 176, "")
    with pytest.raises(ValueError):
        parse_greeting(b"hello")


def test_number_formatting() -> None:
    assert num(Decimal("10")) == "10"
    assert num(Decimal("245.1200")) == "245.12"
    assert num(10.0) == "10"
    assert num(0.5) == "0.5"
    assert fmt(True) == "1" and fmt(None) == ""
    assert to_float("") is None and to_float("1.7976931348623157E308") is None and to_float("1.5") == 1.5


@pytest.mark.parametrize("sv, open_n, completed_n, contract_n, exec_n, err_n",
                         [(157, 120, 92, 39, 31, 5), (166, 123, 92, 40, 31, 6), (176, 128, 97, 40, 31, 6),
                          (177, 127, 96, 40, 31, 6), (178, 127, 96, 40, 32, 6)])
def test_layouts_per_server_version(sv: int, open_n: int, completed_n: int, contract_n: int, exec_n: int,
                                    err_n: int) -> None:
    inst = m.Instrument("AAPL", 1234)
    view = m.OrderView(1, 7, 1000001, inst, "SMART", "BUY", 10, "LMT", 185.5, None, "DAY", "DU1", "ref")
    exe = m.ExecView("e1", "20261118 15:00:00 UTC", "DU1", "BOT", 10, 185.5, 10, 185.5, 1)
    assert len(m.open_order(sv, view)) == open_n
    assert len(m.completed_order(sv, view)) == completed_n
    details = md.Details(inst, "SMART", "SMART,NYSE", "LMT,MKT", "US/Eastern", "", "", "26,26")
    assert len(md.contract_data(sv, 1, details)) == contract_n
    assert len(m.exec_details(sv, -1, view, exe)) == exec_n
    assert len(m.error(sv, 1, 200, "x")) == err_n
    # exact-count messages
    assert len(md.tick_price(1, 1, 10)) == 7
    assert len(m.position("DU1", inst, 1, 1)) == 16
    assert len(m.portfolio_value("DU1", inst, 1, 1, 1, 1, 0)) == 20
    assert len(m.commission_report(exe)) == 8
    assert len(m.next_valid_id(1)) == 3 and len(m.managed_accounts(["DU1"])) == 3


class _Recorder:
    """A stand-in for ib_async's Wrapper: records what the real Decoder calls it with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> object:
        return lambda *args: self.calls.append((name, args))


@pytest.mark.parametrize("sv", [157, 176, 178])
def test_new_builders_decode_with_ib_async(sv: int) -> None:
    """Each market-data / account builder, parsed by ib_async 2.1.0's own Decoder at that server version."""
    from ib_async.decoder import Decoder

    from workbench.emulators.tws.codec import split

    inst = m.Instrument("AMD", 4391, long_name="ADVANCED MICRO DEVICES", industry="Technology")
    details = md.Details(inst, "SMART", "SMART,NYSE", "LMT,MKT", "US/Eastern", "20261118:0400-20261118:2000",
                         "20261118:0930-20261118:1600", "26,26")
    view = m.OrderView(7, 1, 0, inst, "SMART", "SELL", 400, "MKT", None, None, "DAY", "DU1", "", status="PreSubmitted")
    what_if = dict(zip(m.WHAT_IF_FIELDS, ["0.00", "0.00", "100000.00", "4022.50", "2413.50", "-1.80", "4022.50",
                                          "2413.50", "99998.20", 2.0, 2.0, 2.0, "USD", ""]))
    messages = [md.contract_data(sv, 3, details), md.symbol_samples(sv, 4, [inst]), md.market_rule(26, [(0, 0.01)]),
                md.historical_data_update(5, ("20261118 15:00:00 UTC", 1, 3, 0.5, 2, 100, 1.5, 9)),
                md.realtime_bar(6, 1795014000, 1, 3, 0.5, 2, 100, 1.5, 9), m.pnl(8, 1.5, 2.5, -1),
                m.pnl_single(9, 10, 1.5, 2.5, -1, 807.3), md.head_timestamp(10, "20000103 14:30:00 UTC"),
                md.historical_schedule(11, "20261116-09:30:00", "20261116-16:00:00", "US/Eastern",
                                       [("20261116-09:30:00", "20261116-16:00:00", "20261116")]),
                md.tick_req_params(12, 0.01, "9c0001", 3), md.tick_string(12, 48, "80.1;100;1;2;80;false"),
                md.tick_generic(12, 46, 3.0), m.position_multi(13, "DU1", inst, 10, 80.5),
                m.open_order(sv, view, what_if=what_if)]
    recorder = _Recorder()
    decoder = Decoder(recorder, sv)  # type: ignore[arg-type]
    for message in messages:
        decoder.interpret(split(encode(message)[4:]))
    calls = dict(recorder.calls)
    req_id, cd = calls["contractDetails"]
    assert req_id == 3 and cd.longName == "ADVANCED MICRO DEVICES" and cd.industry == "Technology"
    assert cd.liquidHours == "20261118:0930-20261118:1600" and cd.marketRuleIds == "26,26"
    assert cd.contract.conId == 4391
    req_id, samples = calls["symbolSamples"]
    assert req_id == 4 and samples[0].contract.symbol == "AMD"
    assert sv < 176 or samples[0].contract.description == "ADVANCED MICRO DEVICES"
    assert calls["marketRule"][0] == 26 and calls["marketRule"][1][0].increment == 0.01
    bar = calls["historicalDataUpdate"][1]
    assert (bar.open, bar.high, bar.low, bar.close) == (1, 3, 0.5, 2)  # sent as open, close, high, low
    assert (bar.volume, bar.average, bar.barCount) == (100, 1.5, 9)
    assert calls["realtimeBar"] == (6, 1795014000, 1.0, 3.0, 0.5, 2.0, 100.0, 1.5, 9)
    assert calls["pnl"] == (8, 1.5, 2.5, -1.0) and calls["pnlSingle"] == (9, 10, 1.5, 2.5, -1.0, 807.3)
    assert calls["headTimestamp"] == (10, "20000103 14:30:00 UTC")
    assert calls["historicalSchedule"][4][0].refDate == "20261116"
    assert calls["tickReqParams"] == (12, 0.01, "9c0001", 3)
    assert calls["tickString"] == (12, 48, "80.1;100;1;2;80;false") and calls["tickGeneric"] == (12, 46, 3.0)
    assert calls["positionMulti"][3].symbol == "AMD" and calls["positionMulti"][4:] == (10.0, 80.5)
    order, state = calls["openOrder"][2:]
    assert order.whatIf and state.initMarginChange == "4022.50" and float(state.commission) == 2.0


@pytest.mark.parametrize("client, sv", [("ib_async", sv) for sv in (157, 166, 176, 177, 178)]
                         + [("ib_insync", sv) for sv in (157, 166, 176)])  # ib_insync 0.9.86 stops at 176
def test_trail_and_scanner_builders_decode(client: str, sv: int) -> None:
    """openOrder / completedOrder of a TRAIL order and scannerData, parsed by the client's own Decoder."""
    import importlib

    Decoder = importlib.import_module(f"{client}.decoder").Decoder
    inst = m.Instrument("AMD", 4391)
    by_amount = m.OrderView(7, 1, 1000007, inst, "SMART", "SELL", 10, "TRAIL", None, 1.25, "GTC", "DU1", "a",
                            status="PreSubmitted", trail_stop_price=118.5)
    by_percent = m.OrderView(8, 1, 1000008, inst, "SMART", "SELL", 10, "TRAIL", None, None, "DAY", "DU1", "b",
                             status="Cancelled", trail_stop_price=117.3, trailing_percent=2.5)
    recorder = _Recorder()
    decoder = Decoder(recorder, sv)  # type: ignore[arg-type]
    for message in (m.open_order(sv, by_amount), m.completed_order(sv, by_percent),
                    md.scanner_data(9, [inst, m.Instrument("SPY", 756733, "ARCA", trading_class="SPY")])):
        decoder.interpret(split(encode(message)[4:]))
    calls: dict[str, list[tuple[object, ...]]] = {}
    for name, args in recorder.calls:
        calls.setdefault(name, []).append(args)
    order = calls["openOrder"][0][2]
    assert (order.orderType, order.auxPrice, order.trailStopPrice) == ("TRAIL", 1.25, 118.5)
    done = calls["completedOrder"][0][1]
    assert (done.orderType, done.trailingPercent, done.trailStopPrice, done.permId) == ("TRAIL", 2.5, 117.3, 1000008)
    rows = calls["scannerData"]
    assert [(r[1], r[2].contract.symbol, r[2].contract.conId, r[2].marketName) for r in rows] == \
        [(0, "AMD", 4391, "NMS"), (1, "SPY", 756733, "SPY")]
    assert calls["scannerDataEnd"] == [(9,)]
