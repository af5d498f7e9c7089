"""The leaderboard and stats queries read through their intended indexes, never a full table scan."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import models, progress
from bot.core import PrepBot
from benchmarks.plans import Query, explain, full_scans
from bot.fake_chat import FakeChat
from tests.builders import Session
from tests.conftest import FakeClock

async def explained(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], query: Query) -> list[str]:
    plans = await explain(engine, sessions, query, forbid_seqscan=True)
    assert plans, "the query ran no statement against answers or ratings"
    return plans


@pytest.fixture
async def rated(core: PrepBot, chat: FakeChat, clock: FakeClock) -> Session:
    members = Session(core, chat, clock)
    await members.setup()
    await members.post_now()
    answer = await members.answer("alice")
    await members.react("bob", answer, "four")
    return members


@pytest.mark.parametrize("period", ["week", "month", "all"])
async def test_the_leaderboard_reads_a_standing_answers_index(
    rated: Session, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], clock: FakeClock, period: str,
) -> None:
    # Either covering index serves; which one is the planner's call on the data (the benchmark
    # reports the choice at a million ratings).
    since = {"week": clock() - timedelta(days=7), "month": clock() - timedelta(days=30), "all": None}[period]
    channel_id = await channel_of(sessions)
    plans = await explained(engine, sessions, lambda s: progress.leaderboard(s, channel_id, since))
    assert all(not full_scans(plan) for plan in plans), plans
    assert any("ix_answers_standing_by_" in plan for plan in plans), plans


async def test_stats_read_the_members_answers_index_and_the_raters_index(
    rated: Session, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession],
) -> None:
    channel_id = await channel_of(sessions)
    plans = await explained(engine, sessions, lambda s: progress.member_stats(s, channel_id, 1))
    assert all(not full_scans(plan) for plan in plans), plans
    assert any("ix_answers_standing_by_member" in plan for plan in plans), plans
    assert any("ix_ratings_rater_id_channel_id_counted" in plan for plan in plans), plans


def test_the_full_scan_check_recognises_a_scan() -> None:
    assert full_scans("SCAN answers") and full_scans("Seq Scan on ratings  (cost=0.00..1.01 rows=1)")
    assert not full_scans("SEARCH answers USING COVERING INDEX ix_answers_standing_by_time (channel_id=?)")
    assert not full_scans("SCAN answers USING COVERING INDEX ix_answers_standing_by_member")


async def channel_of(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return (await session.scalars(select(models.Channel.id))).one()
