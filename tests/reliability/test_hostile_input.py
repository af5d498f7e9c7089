"""Hostile input, fuzzed: every `/prep` command and `/drill` topic gets a clear reply and changes nothing unless valid.

Arguments are drawn from empty and huge strings, odd Unicode (right-to-left and zero-width marks,
NUL, combining marks, non-characters, astral code points), injection-looking strings, numbers and
tokens of the wrong kind in the wrong place. After each command every table but the inbox (which
records each delivery by design) is compared with its state before.
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import bank, db, models
from bot.actions import PostPrivately
from bot.answers import MAX_ANSWER_CHARS
from bot.commands import MEMBER_COMMANDS, ORGANIZER_COMMANDS
from bot.core import PrepBot
from bot.events import AnswerPosted, CommandInvoked, DrillRequested
from bot.fake_chat import FakeChat
from bot.refs import MessageRef, UserRef
from tests.builders import CHANNEL, WORKSPACE
from tests.conftest import FIXTURE_BANK, Databases
from tests.reliability.support import all_rows, examples

ODD_CHARACTERS = (
    "\x00", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff",  # NUL, zero-width marks, BOM
    "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069",  # direction marks and overrides
    "\u0301", "\u0336", "\ufffd", "\uffff", "\U0010ffff", "\U0001f600", "\U0001f1e9\U0001f1ea",
    "\t", "\n", "\r", "\x0b", "\x1b[31m", "\u3000", "\u00a0", "١٢:٣٠", "שלום", "مرحبا", "İ", "ß", "`", "\\", "'", '"',
)
INJECTIONS = (
    "'; DROP TABLE channels; --", "\" OR 1=1 --", "1; DELETE FROM prompts", "%s%s%s%n", "{0}{1}", "{channel.track}",
    "${jndi:ldap://127.0.0.1/x}", "<script>alert(1)</script>", "<@U-ORGANIZER>", "<!channel>", "@everyone",
    "../../etc/passwd", "$(reboot)", "NULL", "None", "[]", "{}", "true", "-1", "1e309", "NaN", "0x10",
)
TOKENS = (
    "09:00", "9:30", "23:59", "24:00", "25:99", "-1:00", "09:60", "0900", "9", "12:00pm",
    "UTC", "Europe/Berlin", "europe/berlin", "America/New_York", "Mars/Olympus", "Etc/GMT+14", "localtime", "/", "Europe/",
    "mon-fri", "daily", "weekends", "mon,wed,fri", "mon,,fri", "funday", "tue-thu", "monday", "mon-", "-fri",
    "mini", "ops-manager-trust-safety", "MINI", "week", "month", "all", "WEEK", "year",
    *sorted(ORGANIZER_COMMANDS | MEMBER_COMMANDS),
)
hostile_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(ODD_CHARACTERS), max_size=20).map("".join),
    st.lists(st.one_of(st.sampled_from(TOKENS), st.sampled_from(INJECTIONS), st.sampled_from(ODD_CHARACTERS),
                       st.integers().map(str), st.floats().map(str)), max_size=6).map(" ".join),
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=5).map(" ".join),
    st.sampled_from(("", " ", "\u200b", "x" * 501, "9" * 10_000, "mini " * 120, "\x00" * 50, "\U0010ffff" * 300)),
)
COMMANDS = sorted(ORGANIZER_COMMANDS | MEMBER_COMMANDS)
# What a command that did change something says; any other reply must come with no change at all.
ACCEPTED = {
    "setup": "Done.", "pause": "Paused", "resume": "Resumed", "skip": "Skipped", "now": "Posted",
    "track": "This channel now practises",
}
SLUGS = ("strategy-q1", "strategy-q2", "data-q1", "data-q2", "behavior-q1", "behavior-q2")
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
_ids = itertools.count(1)


@dataclass
class Channel:
    """A channel with a schedule and a posted prompt, whose member `fuzzer` already exists."""

    core: PrepBot
    chat: FakeChat
    sessions: async_sessionmaker[AsyncSession]

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        return await all_rows(self.sessions, skip=frozenset({"inbox_events"}))

    async def command(self, text: str, *, admin: bool) -> str:
        reply = await self.core.handle(CommandInvoked(
            f"fuzz:{next(_ids)}", START, CHANNEL, UserRef(WORKSPACE, "fuzzer"), text, user_is_admin=admin))
        assert reply is not None, text
        return reply.message.plain_text()


@pytest.fixture
async def channel(databases: Databases) -> AsyncIterator[Channel]:
    engine = db.create_engine(await databases.new())
    try:
        await db.upgrade(engine)
        sessions = db.session_factory(engine)
        async with sessions() as session, session.begin():
            await bank.sync(session, bank.load_bank(FIXTURE_BANK), START)
        chat = FakeChat()
        practice = Channel(PrepBot(sessions, chat, default_track="mini", clock=lambda: START), chat, sessions)
        assert (await practice.command("setup 09:00 UTC daily", admin=True)).startswith("Done.")
        assert (await practice.command("now", admin=True)).startswith("Posted")
        await practice.command("stats", admin=False)
        yield practice
    finally:
        await engine.dispose()


def fuzz_settings(max_examples: int) -> Any:
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def plausibly_valid(name: str, args: list[str]) -> bool:
    """An independent, rougher reading of validity: an accepted command must at least pass it."""
    if name == "setup":
        time = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", args[0]) if args else None
        return (2 <= len(args) <= 4 and time is not None and int(time[1]) < 24 and int(time[2]) < 60
                and args[1] in zoneinfo.available_timezones() and (len(args) < 4 or args[3] == "mini"))
    if name == "track":
        return args == ["mini"]
    return args == []


async def check_command(channel: Channel, name: str, arguments: str, admin: bool) -> None:
    text = f"{name} {arguments}"
    before = await channel.snapshot()
    reply = await channel.command(text, admin=admin)
    after = await channel.snapshot()
    assert reply.strip(), f"an empty reply to {text!r}"
    assert len(reply) < 4000, f"the reply to {text!r} echoes too much ({len(reply)} characters)"
    assert "Traceback" not in reply and "Error" not in reply, reply
    accepted = ACCEPTED.get(name)
    if after != before:
        assert accepted is not None and reply.startswith(accepted), f"{text!r} changed the database but replied {reply!r}"
        assert admin, f"{text!r} changed the database for a member who is not an organizer"
    if accepted is not None and reply.startswith(accepted):
        assert admin and len(text) <= 500 and plausibly_valid(name, text.replace("\x00", "").split()[1:]), f"{text!r} was accepted: {reply!r}"


@st.composite
def commands(draw: st.DrawFn) -> tuple[str, str, bool]:
    name = draw(st.sampled_from(COMMANDS))
    arguments = draw(st.one_of(hostile_text, st.just("")) if name not in ("setup", "track") else hostile_text)
    return name, arguments, draw(st.booleans())


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@fuzz_settings(examples(1000))
@given(case=commands())
async def test_hostile_prep_arguments_get_a_clear_reply_and_change_nothing_unless_valid_on_sqlite(
    channel: Channel, case: tuple[str, str, bool],
) -> None:
    await check_command(channel, *case)


@pytest.mark.parametrize("databases", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@fuzz_settings(examples(300))
@given(case=commands())
async def test_hostile_prep_arguments_get_a_clear_reply_and_change_nothing_unless_valid_on_postgresql(
    channel: Channel, case: tuple[str, str, bool],
) -> None:
    await check_command(channel, *case)


@pytest.mark.parametrize("databases", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
async def test_a_hostile_command_name_is_refused_without_a_change(channel: Channel) -> None:
    before = await channel.snapshot()
    for text in ("'; DROP TABLE channels; --", "\u202esetup 09:00 UTC", "\u200bpause", "SETUP\u200b 09:00 UTC", "se\x00\u0301tup 09:00 UTC", "x" * 5000):
        reply = await channel.command(text, admin=True)
        assert "not a /prep command" in reply or "at most 500" in reply, reply
    assert await channel.snapshot() == before


async def drill_rows(channel: Channel) -> int:
    async with channel.sessions() as session:
        return await session.scalar(select(func.count()).select_from(models.Drill)) or 0


async def check_drill(channel: Channel, topic: str) -> None:
    before = await channel.snapshot()
    drills = await drill_rows(channel)
    reply = await channel.core.handle(DrillRequested(f"fuzz:{next(_ids)}", START, CHANNEL, UserRef(WORKSPACE, "fuzzer"), topic))
    assert reply is not None and reply.message.plain_text().strip(), f"no reply to /drill {topic!r}"
    assert len(reply.message.plain_text()) < 4000
    words = " ".join(topic.replace("\x00", "").split())
    if words == "" or words.lower() in SLUGS:
        assert await drill_rows(channel) == drills + 1, f"/drill {topic!r} gave no follow-up"
    else:
        assert await channel.snapshot() == before, f"/drill {topic!r} changed the database"


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@fuzz_settings(examples(300))
@given(topic=st.one_of(hostile_text, st.sampled_from((*SLUGS, "DATA-Q1", " data-q2 ", "data", "Data & Technical"))))
async def test_hostile_drill_topics_get_a_clear_reply_and_change_nothing_unless_they_name_a_question_on_sqlite(
    channel: Channel, topic: str,
) -> None:
    await check_drill(channel, topic)


@pytest.mark.parametrize("databases", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@fuzz_settings(examples(100))
@given(topic=st.one_of(hostile_text, st.sampled_from((*SLUGS, "DATA-Q1", " data-q2 ", "data", "Data & Technical"))))
async def test_hostile_drill_topics_get_a_clear_reply_and_change_nothing_unless_they_name_a_question_on_postgresql(
    channel: Channel, topic: str,
) -> None:
    await check_drill(channel, topic)


@pytest.mark.parametrize("databases", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
@fuzz_settings(examples(40))
@given(body=hostile_text, extra=st.sampled_from((0, 1, MAX_ANSWER_CHARS - 80, MAX_ANSWER_CHARS + 1, 200_000)))
async def test_hostile_and_over_long_answers_are_stored_whole_or_refused_with_a_note(channel: Channel, body: str, extra: int) -> None:
    text = body + "y" * extra
    message = MessageRef(CHANNEL, f"answer-{next(_ids)}")
    author = UserRef(WORKSPACE, f"member-{next(_ids)}")
    [(_, prompt)] = channel.chat.prompts
    notes = len(channel.chat.performed)
    await channel.core.handle(AnswerPosted(f"fuzz:{next(_ids)}", START + timedelta(minutes=1), message, prompt, author, text))
    async with channel.sessions() as session:
        stored = await session.scalar(select(models.Answer.text).where(models.Answer.message_id == message.id))
    [note] = [p.action for p in channel.chat.performed[notes:] if isinstance(p.action, PostPrivately)]
    if len(text) > MAX_ANSWER_CHARS:
        assert stored is None and f"at most {MAX_ANSWER_CHARS:,}" in note.message.plain_text()
    else:
        assert stored == text.replace("\x00", ""), "the answer was not stored as written"
        assert "A strong answer covers" in note.message.plain_text()


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_a_schedule_command_with_stray_words_is_refused_rather_than_half_obeyed(channel: Channel) -> None:
    before = await channel.snapshot()
    for text in ("skip friday", "pause for a week", "now please", "resume monday"):
        reply = await channel.command(text, admin=True)
        assert reply.endswith("takes no arguments (got `" + text.split(" ", 1)[1] + "`). Nothing was changed."), reply
    assert await channel.snapshot() == before
