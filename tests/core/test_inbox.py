"""The inbox keeps a week of delivery ids, and an event coming back after its id went still changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import models
from bot.core import INBOX_RETENTION, PrepBot
from bot.events import AnswerPosted, ReactionAdded, ReactionRemoved
from bot.fake_chat import FakeChat
from bot.refs import MessageRef
from bot.scheduler import TickScheduler
from tests.builders import CHANNEL, Session, event_id, user
from tests.conftest import FakeClock


async def inbox_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        return set((await session.scalars(select(models.InboxEvent.event_id))).all())


async def add_old_ids(sessions: async_sessionmaker[AsyncSession], clock: FakeClock, count: int) -> None:
    async with sessions() as session, session.begin():
        session.add_all(models.InboxEvent(event_id=f"old-{n}", kind="ReactionAdded", received_at=clock() - timedelta(days=8, minutes=n))
                        for n in range(count))


async def test_pruning_forgets_the_ids_received_over_a_week_ago_and_keeps_the_rest(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    await members.post_now()
    await members.react("bob", await members.answer("alice"), "four")
    old = await inbox_ids(sessions)
    clock.advance(seconds=INBOX_RETENTION.total_seconds() - 60)
    await members.answer("carol")  # six days, 23 hours and 59 minutes later: kept
    clock.advance(seconds=120)
    assert await core.prune_inbox() == len(old) == 4  # setup, now, the answer and the reaction
    kept = await inbox_ids(sessions)
    assert len(kept) == 1 and not kept & old
    assert await core.prune_inbox() == 0


async def test_an_answer_and_a_reaction_delivered_again_after_their_ids_went_change_nothing(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    thread = await members.post_now()
    answer = AnswerPosted(event_id(), members.now(), MessageRef(CHANNEL, "a-late"), thread, user("alice"), "mine")
    await core.handle(answer)
    added = ReactionAdded(event_id(), members.now(), answer.message, user("bob"), "four")
    await core.handle(added)
    taken_back = ReactionAdded(event_id(), members.now(), answer.message, user("carol"), "five")
    await core.handle(taken_back)
    await core.handle(ReactionRemoved(event_id(), members.now(), answer.message, user("carol"), "five"))
    notes = len(chat.actions)
    clock.advance(days=8)
    assert await core.prune_inbox() > 0 and await inbox_ids(sessions) == set()

    for event in (answer, added, taken_back):  # as if the platform sent them again, ids and all
        await core.handle(event)
    async with sessions() as session:
        tallies = (await session.execute(select(models.Answer.rating_count, models.Answer.rating_sum))).all()
        answers = await session.scalar(select(func.count()).select_from(models.Answer))
    assert tallies == [(1, 4)] and answers == 1
    assert len(chat.actions) == notes, "no second rubric note"


async def test_pruning_goes_a_chunk_at_a_time_until_nothing_old_is_left(
    core: PrepBot, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_old_ids(sessions, clock, 11)
    async with sessions() as session, session.begin():
        session.add(models.InboxEvent(event_id="recent", kind="ReactionAdded", received_at=clock() - timedelta(days=1)))
    assert await core.prune_inbox(chunk=4) == 11
    assert await inbox_ids(sessions) == {"recent"}


async def test_the_scheduler_prunes_the_inbox_once_its_first_wait_is_over(
    core: PrepBot, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_old_ids(sessions, clock, 3)
    scheduler = TickScheduler(core, 3600, prune_every_seconds=3600, first_prune_after=timedelta(0))
    scheduler.start()
    try:
        for _ in range(200):
            if not await inbox_ids(sessions):
                break
            await asyncio.sleep(0.025)
    finally:
        await scheduler.shutdown()
    assert await inbox_ids(sessions) == set()
