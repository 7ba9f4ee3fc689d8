"""Framing and field formatting of the TWS socket protocol (API v100+ framing).

Every message is a 4-byte big-endian length followed by ``\\0``-terminated fields. The client greeting
is the raw ``API\\0`` and then one frame holding ``v<min>..<max>`` *without* a trailing NUL.
"""

from __future__ import annotations

import asyncio
import math
import re
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = ["encode", "read_frame", "split", "fmt", "num", "integer", "parse_greeting", "UNSET_DOUBLE",
           "UNSET_INT", "to_float", "to_int", "ib_time"]

UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INT = 2147483647
_GREETING = re.compile(r"v(\d+)(?:\.\.(\d+))?( .*)?$")
MAX_FRAME = 16 * 1024 * 1024


def fmt(value: Any) -> str:
    """One field as text: None -> "", bools -> 1/0, floats without a spurious exponent where possible."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return num(value)
    return str(value)


def num(value: Any) -> str:
    """A float field. Decimals are written in plain notation ("245.12", "10")."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text if text not in ("-0",) else "0"
    f = float(value)
    if math.isnan(f):
        return ""
    if f.is_integer() and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


def integer(value: Any) -> str:
    """An integer field: never "7.0" (ib_async decodes these with int())."""
    return "" if value is None else str(int(value))


def encode(fields: list[Any] | tuple[Any, ...]) -> bytes:
    """One length-prefixed frame. Never empty."""
    payload = b"".join(fmt(f).replace("\0", "").encode("utf-8") + b"\0" for f in fields)
    return struct.pack(">I", len(payload)) + payload


def split(payload: bytes) -> list[str]:
    """The fields of a frame payload (the trailing terminator is dropped)."""
    parts = payload.decode("utf-8", "backslashreplace").split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The payload of the next frame; raises IncompleteReadError at EOF."""
    (size,) = struct.unpack(">I", await reader.readexactly(4))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is too large")
    return await reader.readexactly(size)


def parse_greeting(payload: bytes) -> tuple[int, int, str]:
    """``b"v157..178 +PACEAPI"`` -> (157, 178, "+PACEAPI")."""
    text = payload.decode("ascii", "replace").rstrip("\0")
    match = _GREETING.match(text)
    if not match:
        raise ValueError(f"bad API greeting {text!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    return low, high, (match.group(3) or "").strip()


def to_float(text: str) -> float | None:
    """A request's double field: "" and the UNSET sentinel become None."""
    if text is None or text.strip() == "":
        return None
    value = float(text)
    return None if value >= UNSET_DOUBLE / 2 else value


def to_int(text: str, default: int = 0) -> int:
    if text is None or text.strip() == "":
        return default
    return int(float(text))


def ib_time(ts: datetime) -> str:
    """``"YYYYMMDD HH:MM:SS UTC"``, the unambiguous form ib_async parses into an aware datetime."""
    return ts.astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")
