"""Holding calls at a fake platform, so a test can stop a call at a chosen point (the crash tests).

A fake asks `Holds.gate` about every call before it carries the call out. A call matching a hold
waits there, neither carried out nor answered, until the test decides (`Held.answer`,
`Held.land_unanswered`) or the fake stops. Whichever way it is let go, a call whose client has
gone away by then (a killed process) is never carried out: it never reached the platform.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Verdict(Enum):
    ANSWER = "answer"  # carry the call out and answer it
    LAND_UNANSWERED = "land-unanswered"  # carry it out, then never answer (the response lost)
    DROP = "drop"  # never carry it out


@dataclass(eq=False)
class Held:
    """A call waiting at the fake: `key` names it (`chat.postMessage`, `POST /channels/1/messages`)."""

    key: str
    args: Any
    verdict: asyncio.Future[Verdict] = field(repr=False)

    def answer(self) -> None:
        """Carry the call out and answer it, as if it had never been held."""
        self._decide(Verdict.ANSWER)

    def land_unanswered(self) -> None:
        """Carry the call out but never answer it: the platform has the message, the caller never hears so."""
        self._decide(Verdict.LAND_UNANSWERED)

    def drop(self) -> None:
        """Never carry the call out (as if it was lost on its way)."""
        self._decide(Verdict.DROP)

    def _decide(self, verdict: Verdict) -> None:
        if not self.verdict.done():
            self.verdict.set_result(verdict)


@dataclass(slots=True)
class _Rule:
    pattern: re.Pattern[str]
    remaining: int


class Holds:
    """The holds a test has asked for, and the calls held so far (oldest first)."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self.held: list[Held] = []
        self.stopped = asyncio.Event()

    def hold(self, key: str, times: int = 1) -> None:
        """Hold the next `times` calls whose key matches the regular expression `key` in full."""
        self._rules.append(_Rule(re.compile(key), times))

    async def gate(self, key: str, args: Any, gone: Callable[[], bool]) -> Verdict:
        """What to do with a call: at once `ANSWER` unless a hold matches; `gone()` says whether its client left."""
        rule = next((r for r in self._rules if r.remaining > 0 and r.pattern.fullmatch(key)), None)
        if rule is None:
            return Verdict.ANSWER
        rule.remaining -= 1
        held = Held(key, args, asyncio.get_running_loop().create_future())
        self.held.append(held)
        if self.stopped.is_set():
            held.drop()
        verdict = await held.verdict
        return Verdict.DROP if gone() else verdict

    async def unanswered(self) -> None:
        """Where a `LAND_UNANSWERED` call waits: until the fake stops."""
        await self.stopped.wait()

    def stop(self) -> None:
        """Let every held call go (dropped, unless already decided) as the fake shuts down."""
        self.stopped.set()
        for held in self.held:
            held.drop()
