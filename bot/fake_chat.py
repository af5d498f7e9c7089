"""A recording `ChatPort`: the test suite's double, and the heart of the console adapter."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from bot.actions import Action, PostPrivately, PostPrompt, action_channel
from bot.refs import ChannelRef, MessageRef


@dataclass(frozen=True, slots=True)
class Performed:
    action: Action
    ref: MessageRef | None


class FakeChat:
    """Records every action it performs and hands out message ids `m1`, `m2`, …

    `fail_next(error, delivered=...)` makes the next call raise; with `delivered=True` the action
    still lands first, like a send whose response was lost.
    """

    def __init__(self, id_prefix: str = "m") -> None:
        self.performed: list[Performed] = []
        self._ids = itertools.count(1)
        self._prefix = id_prefix
        self._failures: list[tuple[Exception, bool]] = []

    def fail_next(self, error: Exception, *, delivered: bool = False) -> None:
        self._failures.append((error, delivered))

    @property
    def actions(self) -> list[Action]:
        return [p.action for p in self.performed]

    @property
    def prompts(self) -> list[tuple[PostPrompt, MessageRef]]:
        return [(p.action, p.ref) for p in self.performed if isinstance(p.action, PostPrompt) and p.ref]

    async def perform(self, action: Action) -> MessageRef | None:
        failure = self._failures.pop(0) if self._failures else None
        if failure and not failure[1]:
            raise failure[0]
        ref = None
        if not isinstance(action, PostPrivately):
            ref = MessageRef(action_channel(action), f"{self._prefix}{next(self._ids)}")
        self.performed.append(Performed(action, ref))
        if failure:
            raise failure[0]
        return ref

    async def find_prompt(self, channel: ChannelRef, marker: str, since: datetime) -> MessageRef | None:
        for action, ref in self.prompts:
            if action.channel == channel and action.marker == marker:
                return ref
        return None
