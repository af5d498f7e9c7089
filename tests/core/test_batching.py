"""Group commit: events share transactions, yet each lands exactly once and a failure stays its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session as OrmSession

from bot import db, models, store
from bot.batching import GroupCommitter
from bot.core import PrepBot
from bot.events import ReactionAdded
from bot.fake_chat import FakeChat
from tests.builders import CHANNEL, Session, event_id, user
from tests.conftest import FakeClock


class Boom(Exception):
    pass


def recorder(fail_on: set[int], sessions_seen: list[int]) -> Callable[[OrmSession, Sequence[int]], list[int]]:
    """An `apply` that stores an inbox row per item, fails on `fail_on`, and notes each session it ran in."""

    def apply(session: OrmSession, items: Sequence[int]) -> list[int]:
        if id(session) not in sessions_seen:
            sessions_seen.append(id(session))
        for item in items:
            if item in fail_on:
                raise Boom(f"item {item}")
            session.add(models.InboxEvent(event_id=f"item-{item}", kind="test", received_at=datetime(2026, 3, 2, tzinfo=UTC)))
        return [item * 10 for item in items]

    return apply


async def stored(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return sorted((await session.scalars(select(models.InboxEvent.event_id).where(models.InboxEvent.kind == "test"))).all())


async def test_items_submitted_together_share_a_commit_and_each_gets_its_own_result(sessions: async_sessionmaker[AsyncSession]) -> None:
    transactions: list[int] = []
    apply = recorder(set(), transactions)
    committer: GroupCommitter[int, int] = GroupCommitter(db.transactions(sessions), apply)
    results = await asyncio.gather(*(committer.submit(n) for n in range(1, 21)))
    assert results == [n * 10 for n in range(1, 21)]
    assert len(await stored(sessions)) == 20
    assert len(transactions) < 20  # some shared a transaction


async def test_a_failing_item_fails_alone_and_the_rest_of_its_batch_still_lands(sessions: async_sessionmaker[AsyncSession]) -> None:
    apply = recorder({3}, [])
    committer: GroupCommitter[int, int] = GroupCommitter(db.transactions(sessions), apply)
    results = await asyncio.gather(*(committer.submit(n) for n in range(1, 6)), return_exceptions=True)
    assert [r if not isinstance(r, Boom) else "boom" for r in results] == [10, 20, "boom", 40, 50]
    assert await stored(sessions) == ["item-1", "item-2", "item-4", "item-5"]


async def test_a_caller_that_gives_up_does_not_take_its_batch_down(sessions: async_sessionmaker[AsyncSession]) -> None:
    apply = recorder(set(), [])
    committer: GroupCommitter[int, int] = GroupCommitter(db.transactions(sessions), apply)
    impatient = asyncio.create_task(committer.submit(1))
    patient = asyncio.create_task(committer.submit(2))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await patient == 20
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert await stored(sessions) == ["item-1", "item-2"]


async def test_concurrent_reactions_through_the_core_each_count_once(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    members = Session(core, chat, clock)
    await members.setup()
    await members.post_now()
    answer = await members.answer("alice")
    events = [ReactionAdded(event_id(), members.now(), answer, user(f"rater{n}"), "four") for n in range(30)]
    await asyncio.gather(*(core.handle(event) for event in events + events))  # every one delivered twice, at once
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(models.Rating)) == 30
        assert (await session.scalars(select(models.Answer.rating_count))).one() == 30


async def test_each_transaction_holds_the_channels_its_events_touch(
    core: PrepBot, chat: FakeChat, clock: FakeClock, sessions: async_sessionmaker[AsyncSession],
) -> None:
    # A batch locks a channel once, for all its events; the next transaction must lock it again.
    members = Session(core, chat, clock)
    await members.setup()
    engine = sessions.kw["bind"]

    def lock_twice(session: OrmSession) -> int | None:
        store.lock_channel(session, CHANNEL)
        return store.lock_channel(session, CHANNEL)

    async with sessions() as session:
        for _ in range(2):
            async with session.begin():
                channel_id = await session.run_sync(lock_twice)
                if engine.dialect.name == "postgresql":
                    async with engine.connect() as other:
                        with pytest.raises(DBAPIError, match="could not obtain lock"):
                            await other.execute(text("SELECT id FROM channels WHERE id = :id FOR UPDATE NOWAIT"), {"id": channel_id})
    assert channel_id is not None
