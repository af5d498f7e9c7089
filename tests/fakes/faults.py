"""Seeded random platform faults for the fake servers: 429s, 5xx and timeouts, some after the work was done."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

RATE_LIMITED, SERVER_ERROR, TIMEOUT = "rate-limited", "server-error", "timeout"


@dataclass(frozen=True, slots=True)
class Fault:
    """How one call is answered: `rate-limited` (429 with Retry-After; nothing done), `server-error`
    (500, 502 or 503) or `timeout` (no answer until the client gives up). A 5xx or a timeout comes
    `after_work` (the platform did what was asked, and the answer is lost) or before it."""

    kind: str
    status: int
    after_work: bool

    @property
    def landed(self) -> bool:
        """Whether the platform carried the call out although the client was told it failed (or told nothing)."""
        return self.kind != RATE_LIMITED and self.after_work


class RandomFaults:
    """Draws a fault for a `rate` share of calls from seeded generators, so a failing run replays with its seed.

    Each kind of call (its name with long numbers, i.e. ids, left out) has a generator of its own:
    the n-th call of a kind meets the same fault however the calls of different kinds interleave.

    The faults are a third 429s, a third 500/502/503 and a third timeouts, and a 5xx or a timeout
    comes after the work as often as before it: both happen in reality. `drawn` lists every fault
    with the name of the call it hit. A timed-out call answers after `late_seconds`, or never if
    the client hangs up first (the fakes' servers cancel a handler whose client went away).
    """

    def __init__(self, rate: float, seed: int, chosen: Callable[[str], bool], late_seconds: float = 60.0) -> None:
        self.rate = rate
        self.seed = seed
        self.late_seconds = late_seconds
        self.drawn: list[tuple[str, Fault]] = []
        self.paused = False
        self._rngs: dict[str, random.Random] = {}
        self._chosen = chosen
        self._stopped = asyncio.Event()

    def draw(self, name: str) -> Fault | None:
        if self.paused or not self._chosen(name):
            return None
        kind_of_call = re.sub(r"\d{6,}", "#", name)
        rng = self._rngs.setdefault(kind_of_call, random.Random(f"{self.seed}/{kind_of_call}"))
        if rng.random() >= self.rate:
            return None
        kind = rng.choice((RATE_LIMITED, SERVER_ERROR, TIMEOUT))
        status = {RATE_LIMITED: 429, SERVER_ERROR: rng.choice((500, 502, 503)), TIMEOUT: 0}[kind]
        fault = Fault(kind, status, kind != RATE_LIMITED and rng.random() < 0.5)
        self.drawn.append((name, fault))
        return fault

    async def carry_out(self, fault: Fault, work: Callable[[], Awaitable[T]]) -> T | None:
        """Do the work if the fault comes after it; for a timeout, then wait until the client gives up."""
        done = await work() if fault.after_work else None
        if fault.kind == TIMEOUT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.late_seconds)
        return done

    def stop(self) -> None:
        """Let every call still held by a timeout answer (the fake is stopping)."""
        self._stopped.set()
