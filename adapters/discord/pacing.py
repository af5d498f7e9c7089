"""Keeps the bot's own REST requests under Discord's global limit of 50 requests a second per bot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# Below Discord's 50 a second: discord.py's own requests (thread-parent lookups, interaction
# answers) are not paced here, and the requests of one second can arrive a little bunched.
REQUESTS_PER_SECOND = 45.0
# At most this many go at once after a quiet spell, so no second holds more than 45 + 3.
REQUEST_BURST = 3
# A wait computed to the token rounds to a hair short of it; such a hair is not worth another sleep.
ROUNDING = 1e-9


class TokenBucket:
    """Lets requests through at `per_second` on average and at most `burst` at once, first come first served.

    A request takes its token when it goes, never a slot reserved ahead: after the event loop
    stalls, the requests that waited through the stall share what the bucket holds, rather than all
    going at once in the slots the stall skipped. A request cancelled while it waits takes nothing.
    """

    def __init__(
        self, per_second: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and room for at least one token")
        self._per_second = per_second
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._at = clock()
        self._turn = asyncio.Lock()  # wakes its waiters in the order they came

    async def __aenter__(self) -> None:
        async with self._turn:
            while (short := 1.0 - self._refill()) > ROUNDING:
                await self._sleep(short / self._per_second)
            self._tokens -= 1.0

    async def __aexit__(self, *exc: object) -> None:
        return None

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._per_second)
        self._at = now
        return self._tokens
