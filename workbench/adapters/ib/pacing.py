"""IB historical-data pacing, scheduled instead of violated (error 162).

IB's rules for historical data requests: at most 60 requests in any 10 minutes; no identical request
within 15 seconds; at most 6 requests for the same contract, exchange and tick type within 2 seconds.
:class:`HistoricalPacer` says how long to wait before a request so that none of them trips.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["HistoricalPacer"]


class HistoricalPacer:
    """Thread-safe pacing state; ``clock`` is a monotonic clock in seconds (injectable for tests)."""

    def __init__(self, max_requests: int = 60, window: float = 600.0, identical_gap: float = 15.0,
                 burst: int = 6, burst_window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_requests, self.window = max_requests, window
        self.identical_gap = identical_gap
        self.burst, self.burst_window = burst, burst_window
        self.clock = clock
        self._all: deque[float] = deque()
        self._by_contract: dict[Hashable, deque[float]] = {}
        self._last_identical: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def delay(self, contract: Hashable, request: Hashable) -> float:
        """Seconds to wait before sending ``request`` (a hashable of all its parameters) for ``contract``."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            waits = [0.0]
            if len(self._all) >= self.max_requests:
                waits.append(self._all[len(self._all) - self.max_requests] + self.window - now)
            recent = self._by_contract.get(contract, ())
            if len(recent) >= self.burst:
                waits.append(recent[len(recent) - self.burst] + self.burst_window - now)
            last = self._last_identical.get(request)
            if last is not None:
                waits.append(last + self.identical_gap - now)
            return max(waits)

    def record(self, contract: Hashable, request: Hashable) -> None:
        """Note that ``request`` was sent now."""
        with self._lock:
            now = self.clock()
            self._all.append(now)
            self._by_contract.setdefault(contract, deque()).append(now)
            self._last_identical[request] = now

    def _expire(self, now: float) -> None:
        while self._all and self._all[0] <= now - self.window:
            self._all.popleft()
        for times in self._by_contract.values():
            while times and times[0] <= now - self.burst_window:
                times.popleft()
        for key in [k for k, t in self._last_identical.items() if t <= now - self.identical_gap]:
            del self._last_identical[key]
