"""Redelivered events change nothing: every event of a session delivered twice ends where one delivery ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import bank, db
from bot.core import PrepBot
from bot.events import (
    AnswerDeleted,
    AnswerEdited,
    AnswerPosted,
    DrillRequested,
    Event,
    ReactionAdded,
    ReactionRemoved,
)
from bot.fake_chat import FakeChat
from bot.refs import MessageRef
from tests.builders import CHANNEL, Session, event_id, user
from tests.conftest import FIXTURE_BANK, Databases, FakeClock

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def script(thread: MessageRef, start: object) -> list[Event]:
    at = start
    def tick() -> object:
        nonlocal at
        at = at + timedelta(seconds=1)  # type: ignore[operator]
        return at
    a, b, c = (MessageRef(CHANNEL, f"answer-{n}") for n in "abc")
    return [
        AnswerPosted(event_id(), tick(), a, thread, user("alice"), "alice v1"),  # type: ignore[arg-type]
        AnswerPosted(event_id(), tick(), b, thread, user("bob"), "bob v1"),  # type: ignore[arg-type]
        AnswerPosted(event_id(), tick(), c, thread, user("carol"), "carol v1"),  # type: ignore[arg-type]
        AnswerEdited(event_id(), tick(), a, "alice v2"),  # type: ignore[arg-type]
        ReactionAdded(event_id(), tick(), a, user("bob"), "four"),  # type: ignore[arg-type]
        ReactionAdded(event_id(), tick(), a, user("bob"), "five"),  # type: ignore[arg-type]
        ReactionRemoved(event_id(), tick(), a, user("bob"), "five"),  # type: ignore[arg-type]
        ReactionAdded(event_id(), tick(), b, user("alice"), "three"),  # type: ignore[arg-type]
        ReactionAdded(event_id(), tick(), c, user("alice"), "five"),  # type: ignore[arg-type]
        ReactionAdded(event_id(), tick(), c, user("carol"), "five"),  # type: ignore[arg-type]
        AnswerDeleted(event_id(), tick(), b),  # type: ignore[arg-type]
        DrillRequested(event_id(), tick(), CHANNEL, user("alice"), "", thread),  # type: ignore[arg-type]
    ]


async def outcome(members: Session) -> tuple[str, ...]:
    board = await members.command("leaderboard all", who="alice")
    return (board, *[await members.command("stats", who=name) for name in ("alice", "bob", "carol")])


async def replay(database_url: str, clock: FakeClock, times: int) -> tuple[str, ...]:
    """Run the script on a fresh database, delivering each event `times` times in a row."""
    clock.set(START)
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
        sessions = db.session_factory(engine)
        async with sessions() as session, session.begin():
            await bank.sync(session, bank.load_bank(FIXTURE_BANK), clock())
        chat = FakeChat()
        core = PrepBot(sessions, chat, default_track="mini", clock=clock)
        members = Session(core, chat, clock)
        await members.setup()
        thread = await members.post_now()
        for event in script(thread, clock()):
            for _ in range(times):
                await core.handle(event)
        return await outcome(members)
    finally:
        await engine.dispose()


async def test_every_event_delivered_twice_ends_where_one_delivery_ends(databases: Databases, clock: FakeClock) -> None:
    once = await replay(await databases.new(), clock, 1)
    twice = await replay(await databases.new(), clock, 2)
    assert "avg 4.00 from 1 rating" in once[0]  # the add 4, add 5, remove 5 rule held
    assert twice == once


async def test_a_second_delivery_of_each_event_changes_no_tally_and_sends_nothing_more(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    thread = await members.post_now()
    events = script(thread, clock())
    for event in events:
        await core.handle(event)
    first, actions = await outcome(members), len(chat.performed)
    for event in reversed(events):  # redelivered, and out of order
        assert await core.handle(event) is None
    assert await outcome(members) == first
    assert len(chat.performed) == actions
