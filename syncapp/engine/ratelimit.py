"""Token-bucket bandwidth limits, shared by every transfer that passes through them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence


class RateLimit:
    """At most ``rate`` bytes per second on average, with bursts of up to one second's worth."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._tokens = float(rate)
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def consume(self, n: int) -> None:
        if self.rate <= 0 or n <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.rate), self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            if self._tokens < 0:
                # Sleep holding the lock: waiters queue up in order instead of all waking at once.
                await asyncio.sleep(-self._tokens / self.rate)
                self._last = time.monotonic()
                self._tokens = 0.0


async def limited(body: AsyncIterable[bytes], limits: Sequence[RateLimit]) -> AsyncIterator[bytes]:
    """Pass ``body`` through every limit in ``limits``."""
    async for chunk in body:
        for lim in limits:
            await lim.consume(len(chunk))
        yield chunk
