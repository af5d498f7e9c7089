"""Several schedulers on one database: 200 channels due at the same minute get exactly one post each.

Each core has its own engine, as separate processes would: three on PostgreSQL, two on one SQLite
file. They tick concurrently, two ticks per core at once, then again, then after any claim would have gone stale, and the
posts are counted on every core's chat and in the database. A second test shares one platform
between the cores and loses sends mid-flight, so that the cores race to take stale claims over. The version with `prepbot run`
OS processes posting to the fake Slack and Discord is `test_many_processes.py`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import bank, db, models
from bot.core import PrepBot
from bot.fake_chat import FakeChat
from bot.schedule import EVERY_DAY
from tests.conftest import FIXTURE_BANK, Databases, FakeClock

CHANNELS = 200
DUE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CORES = {"sqlite": 2, "postgresql": 3}


@pytest.fixture
async def engines(databases: Databases) -> AsyncIterator[list[AsyncEngine]]:
    url = await databases.new()
    # Small pools: the PostgreSQL server is shared with the rest of the suite.
    made = [db.create_engine(url, pool_size=4, max_overflow=2) for _ in range(CORES[databases.backend])]
    try:
        await db.upgrade(made[0])
        async with db.session_factory(made[0])() as session, session.begin():
            await bank.sync(session, bank.load_bank(FIXTURE_BANK), DUE - timedelta(days=1))
            workspace = models.Workspace(platform="test", external_id="T1", created_at=DUE - timedelta(days=1))
            session.add(workspace)
            await session.flush()
            session.add_all(models.Channel(
                workspace_id=workspace.id, external_id=f"C{n:03}", track="mini", post_time=time(9, 0), timezone="UTC",
                weekdays=EVERY_DAY, paused=False, created_at=DUE - timedelta(days=1), updated_at=DUE - timedelta(days=1),
            ) for n in range(CHANNELS))
        yield made
    finally:
        for engine in made:
            await engine.dispose()


async def test_two_hundred_channels_due_at_once_get_exactly_one_post_each_however_many_cores_tick(engines: list[AsyncEngine]) -> None:
    clock = FakeClock(DUE + timedelta(seconds=20))
    chats = [FakeChat(id_prefix=f"core{n}-") for n in range(len(engines))]
    cores = [PrepBot(db.session_factory(engine), chat, default_track="mini", clock=clock) for engine, chat in zip(engines, chats)]

    await asyncio.gather(*(core.tick() for core in cores for _ in range(2)))
    await asyncio.gather(*(core.tick() for core in cores))
    clock.advance(minutes=2)  # any claim still unrecorded would now be stale and taken over
    await asyncio.gather(*(core.tick() for core in cores))

    posted = Counter(action.channel.id for chat in chats for action, _ in chat.prompts)
    assert len(posted) == CHANNELS and set(posted.values()) == {1}, [c for c, n in posted.items() if n > 1]
    by_core = {ref.id for chat in chats for _, ref in chat.prompts}
    async with db.session_factory(engines[0])() as session:
        rows = (await session.execute(select(models.Channel.external_id, models.Prompt.status, models.Prompt.message_id).join(
            models.Prompt, models.Prompt.channel_id == models.Channel.id))).all()
    assert len(rows) == CHANNELS and {status for _, status, _ in rows} == {"posted"}
    assert {message for _, _, message in rows} == by_core  # each recorded message is the one its poster sent


async def test_sends_lost_mid_flight_are_reconciled_or_resent_once_when_several_cores_race_to_take_them_over(
    engines: list[AsyncEngine],
) -> None:
    """One platform shared by every core: some sends land but their response is lost, some never land."""
    clock = FakeClock(DUE + timedelta(seconds=20))
    platform = FakeChat()
    for n in range(30):
        platform.fail_next(ConnectionError("connection reset"), delivered=n % 3 != 0)
    cores = [PrepBot(db.session_factory(engine), platform, default_track="mini", clock=clock) for engine in engines]

    first = [result for results in await asyncio.gather(*(core.tick() for core in cores)) for result in results]
    assert sum(1 for r in first if r.outcome == "failed") == 30
    clock.advance(minutes=2)  # the failed claims are now stale: every core tries to take each over
    await asyncio.gather(*(core.tick() for core in cores for _ in range(2)))

    posted = Counter(action.channel.id for action, _ in platform.prompts)
    assert len(posted) == CHANNELS and set(posted.values()) == {1}, [c for c, n in posted.items() if n > 1]
    async with db.session_factory(engines[0])() as session:
        rows = (await session.execute(select(models.Prompt.status, models.Prompt.message_id))).all()
    assert {status for status, _ in rows} == {"posted"}
    assert {message for _, message in rows} == {ref.id for _, ref in platform.prompts}
