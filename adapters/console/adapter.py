"""A terminal channel: answer as different members, react, drill and run every command.

Input is read line by line, so a script can be piped in. Everything the bot does is printed.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TextIO

from bot.actions import Action, PostPrivately, PostPrompt, PostReply, Reply
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
from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef

WORKSPACE = WorkspaceRef("console", "local")
CHANNEL = ChannelRef(WORKSPACE, "practice")
SCORES = {"1": "one", "2": "two", "3": "three", "4": "four", "5": "five"}
FIRST_RUN_SETUP = "setup 09:00 UTC daily"

HELP = """\
Console commands (anything not starting with / is an answer to the current question):
  /as <name>              speak as another member (now: {member})
  /react <n> <1-5>        rate answer #n; /unreact <n> <1-5> takes the rating back
  /edit <n> <text>        change answer #n; /delete <n> withdraws it
  /answers                list the answers in this thread
  /drill [topic]          your next follow-up on the current question, or a practice question on a topic
  /prep <command>         any /prep command (you are an organizer here): /prep help lists them
  /tick                   post whatever is due now
  /help                   this list;  /quit  leaves (so does end of input)"""


class ConsoleChat(FakeChat):
    """The console's `ChatPort`: records like the fake, and prints every action."""

    def __init__(self, out: Callable[[str], None]) -> None:
        super().__init__(id_prefix=f"bot-{secrets.token_hex(3)}-")
        self._out = out
        self.current: MessageRef | None = None

    async def perform(self, action: Action) -> MessageRef | None:
        ref = await super().perform(action)
        match action:
            case PostPrompt(message=message):
                self.current = ref
                self._out(render(message, "#practice · prepbot"))
            case PostReply(message=message):
                self._out(render(message, "  ↳ prepbot, in the thread"))
            case PostPrivately(user=user, message=message):
                self._out(render(message, f"  prepbot, privately to {user.id}"))
        return ref


def render(message: Message, speaker: str) -> str:
    text = re.sub(r"<@([^>]+)>", r"@\1", message.plain_text())
    body = "\n".join(f"    {line}" if line else "" for line in text.splitlines())
    return f"{speaker}:\n{body}\n"


class ConsoleAdapter:
    platform = "console"

    def __init__(self, stdin: TextIO, stdout: TextIO, member: str = "you") -> None:
        self._stdin = stdin
        self._stdout = stdout
        self._chat = ConsoleChat(self._print)
        self._member = member
        self._answers: list[MessageRef] = []
        self._ids = (f"msg-{secrets.token_hex(3)}-{n}" for n in range(1, 1 << 62))
        self._last_at = datetime.min.replace(tzinfo=UTC)

    @property
    def port(self) -> ConsoleChat:
        return self._chat

    def _print(self, text: str) -> None:
        self._stdout.write(text + "\n")
        self._stdout.flush()

    async def run(self, core: PrepBot) -> None:
        self._print("prepbot console: a practice channel in your terminal. Type /help for commands.\n")
        if not await core.is_set_up(CHANNEL):
            self._print("(first run: scheduling a daily question at 09:00 UTC; change it with /prep setup)")
            await self._command(core, FIRST_RUN_SETUP)
        current = await core.current_prompt(CHANNEL)
        if current is None:
            await self._command(core, "now")
        else:
            self._chat.current = current[0]
            self._print(render(current[1], "#practice · prepbot (the current question)"))
        while (line := await asyncio.to_thread(self._stdin.readline)) != "":
            line = line.strip()
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            try:
                await self._dispatch(core, line)
            except _UsageError as error:
                self._print(f"  ! {error}")

    async def _dispatch(self, core: PrepBot, line: str) -> None:
        if not line.startswith("/"):
            await self._answer(core, line)
            return
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        match name.lower():
            case "help":
                self._print(HELP.format(member=self._member))
            case "as":
                if not rest or len(rest.split()) != 1:
                    raise _UsageError("usage: /as <name>, a single word such as /as alice")
                self._member = rest
                self._print(f"  (you are now {rest})")
            case "prep":
                await self._command(core, rest)
            case "drill":
                await self._show(await core.handle(DrillRequested(
                    self._event_id(), self._at(), CHANNEL, self._user(), topic=rest, thread=None if rest else self._chat.current)))
            case "react" | "unreact":
                target, score = self._answer_and_score(rest)
                kind = ReactionAdded if name.lower() == "react" else ReactionRemoved
                await core.handle(kind(self._event_id(), self._at(), target, self._user(), SCORES[score]))
                self._print(f"  ({self._member} {'rated' if kind is ReactionAdded else 'took back'} {score} on answer #{self._answers.index(target) + 1})")
            case "edit":
                number, _, text = rest.partition(" ")
                target = self._numbered(number)
                if not text.strip():
                    raise _UsageError("usage: /edit <n> <new text>")
                await core.handle(AnswerEdited(self._event_id(), self._at(), target, text.strip(), self._chat.current, self._user()))
                self._print(f"  (answer #{number} edited)")
            case "delete":
                target = self._numbered(rest)
                await core.handle(AnswerDeleted(self._event_id(), self._at(), target))
                self._print(f"  (answer #{rest} deleted)")
            case "answers":
                self._print("  answers in this thread: " + (", ".join(f"#{i}" for i in range(1, len(self._answers) + 1)) or "none yet"))
            case "tick":
                results = await core.tick()
                if not results:
                    self._print("  (nothing is due right now)")
            case _:
                raise _UsageError(f"/{name} is not a console command; /help lists them")

    async def _answer(self, core: PrepBot, text: str) -> None:
        if self._chat.current is None:
            raise _UsageError("there is no question to answer yet: try /prep now")
        message = MessageRef(CHANNEL, next(self._ids))
        self._answers.append(message)
        self._print(f"  {self._member} answered (#{len(self._answers)})")
        await core.handle(AnswerPosted(self._event_id(), self._at(), message, self._chat.current, self._user(), text))

    async def _command(self, core: PrepBot, text: str) -> None:
        await self._show(await core.handle(CommandInvoked(
            self._event_id(), self._at(), CHANNEL, self._user(), text, user_is_admin=True, thread=self._chat.current)))

    async def _show(self, reply: Reply | None) -> None:
        if reply is not None:
            speaker = f"  prepbot, privately to {self._member}" if reply.private else "  ↳ prepbot, in the thread"
            self._print(render(reply.message, speaker))

    def _answer_and_score(self, rest: str) -> tuple[MessageRef, str]:
        try:
            number, score = shlex.split(rest)
        except ValueError:
            raise _UsageError("usage: /react <answer number> <1-5>, e.g. /react 2 4") from None
        if score not in SCORES:
            raise _UsageError(f"{score!r} is not a rating: use 1, 2, 3, 4 or 5")
        return self._numbered(number), score

    def _numbered(self, number: str) -> MessageRef:
        if not number.isdigit() or not 1 <= int(number) <= len(self._answers):
            raise _UsageError(f"there is no answer #{number or '?'}; /answers lists them")
        return self._answers[int(number) - 1]

    def _user(self) -> UserRef:
        return UserRef(WORKSPACE, self._member, self._member)

    def _event_id(self) -> str:
        return f"console:{uuid.uuid4()}"

    def _at(self) -> datetime:
        # Strictly increasing, so the order of rating events is the order they were typed.
        self._last_at = max(datetime.now(UTC), self._last_at + timedelta(microseconds=1))
        return self._last_at


class _UsageError(Exception):
    pass
