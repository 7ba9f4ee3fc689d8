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
