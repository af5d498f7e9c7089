"""Builders for core events in tests: one workspace, one channel, members by name."""

from __future__ import annotations

import itertools
from datetime import datetime

from bot.actions import PostPrompt, Reply
from bot.core import PrepBot
from bot.events import (
    AnswerDeleted,
    AnswerEdited,
    AnswerPosted,
    CommandInvoked,
    DrillRequested,
    ReactionAdded,
    ReactionRemoved,
)
from bot.fake_chat import FakeChat
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef

WORKSPACE = WorkspaceRef("test", "T1")
CHANNEL = ChannelRef(WORKSPACE, "C1")
ORGANIZER = "U-ORGANIZER"
_ids = itertools.count(1)


def user(name: str) -> UserRef:
    return UserRef(WORKSPACE, name)


def event_id() -> str:
    return f"test:{next(_ids)}"


class Session:
    """Drives a core as members of one channel would, with a clock the test controls."""

    def __init__(self, core: PrepBot, chat: FakeChat, clock: object, channel: ChannelRef = CHANNEL) -> None:
        self.core, self.chat, self.clock, self.channel = core, chat, clock, channel
        self._messages = itertools.count(1)

    def now(self) -> datetime:
        """The event time: each event a millisecond after the last, as on a real platform."""
        return self.clock.advance(milliseconds=1)  # type: ignore[attr-defined, no-any-return]

    async def command(self, text: str, who: str = ORGANIZER, *, admin: bool = False, thread: MessageRef | None = None) -> str:
        reply = await self.core.handle(CommandInvoked(event_id(), self.now(), self.channel, user(who), text, admin, thread))
        assert reply is not None
        return reply.message.plain_text()

    async def setup(self, spec: str = "09:00 UTC daily") -> str:
        reply = await self.command(f"setup {spec}", admin=True)
        assert reply.startswith("Done."), reply
        return reply

    async def post_now(self) -> MessageRef:
        await self.command("now", admin=True)
        return self.latest_prompt()

    def latest_prompt(self) -> MessageRef:
        prompts = [ref for action, ref in self.chat.prompts if action.channel == self.channel]
        assert prompts, "no prompt was posted"
        return prompts[-1]

    def prompt_actions(self) -> list[PostPrompt]:
        return [action for action, _ in self.chat.prompts if action.channel == self.channel]

    async def answer(self, who: str, text: str = "my answer", thread: MessageRef | None = None, *, event: str | None = None, bot: bool = False) -> MessageRef:
        message = MessageRef(self.channel, f"a{next(self._messages)}")
        await self.core.handle(AnswerPosted(event or event_id(), self.now(), message, thread or self.latest_prompt(), user(who), text, bot))
        return message

    def answer_event(self, who: str, message: MessageRef, thread: MessageRef, text: str = "my answer", at: datetime | None = None) -> AnswerPosted:
        return AnswerPosted(event_id(), at or self.now(), message, thread, user(who), text)

    async def edit(self, message: MessageRef, text: str) -> None:
        await self.core.handle(AnswerEdited(event_id(), self.now(), message, text))

    async def delete(self, message: MessageRef) -> None:
        await self.core.handle(AnswerDeleted(event_id(), self.now(), message))

    async def react(self, who: str, message: MessageRef, emoji: str, *, bot: bool = False) -> None:
        await self.core.handle(ReactionAdded(event_id(), self.now(), message, user(who), emoji, bot))

    async def unreact(self, who: str, message: MessageRef, emoji: str) -> None:
        await self.core.handle(ReactionRemoved(event_id(), self.now(), message, user(who), emoji))

    async def drill(self, who: str, topic: str = "", thread: MessageRef | None = None) -> Reply:
        reply = await self.core.handle(DrillRequested(event_id(), self.now(), self.channel, user(who), topic, thread))
        assert reply is not None
        return reply
