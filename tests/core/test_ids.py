"""The id cache only ever holds ids of rows that were committed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import ids, models
from bot.refs import UserRef, WorkspaceRef
from bot.store import member_id, workspace_id

NOW = datetime(2026, 3, 2, tzinfo=UTC)
WORKSPACE = WorkspaceRef("test", "T-ids")


class Abandon(Exception):
    pass


async def test_ids_learned_in_a_rolled_back_transaction_are_not_kept(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(Abandon):
        async with sessions() as session, session.begin():
            await session.run_sync(member_id, UserRef(WORKSPACE, "ghost"), NOW)
            assert ids.get(session.info, ("member", WORKSPACE, "ghost")) is not None  # known inside the transaction
            raise Abandon
    async with sessions() as session, session.begin():
        assert ids.get(session.info, ("member", WORKSPACE, "ghost")) is None
        again = await session.run_sync(member_id, UserRef(WORKSPACE, "ghost"), NOW)
        assert await session.scalar(select(func.count()).select_from(models.Member).where(models.Member.id == again)) == 1


async def test_committed_ids_are_served_from_the_cache_by_every_session(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        first = await session.run_sync(member_id, UserRef(WORKSPACE, "alice"), NOW)
    async with sessions() as session:
        assert ids.get(session.info, ("member", WORKSPACE, "alice")) == ids.KnownMember(first, False, None)
        assert ids.get(session.info, ("workspace", WORKSPACE)) == await session.run_sync(workspace_id, WORKSPACE, NOW)


async def test_learning_that_a_member_is_a_bot_goes_to_the_database_despite_the_cache(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        robot = await session.run_sync(member_id, UserRef(WORKSPACE, "robot"), NOW)
    async with sessions() as session, session.begin():
        await session.run_sync(member_id, UserRef(WORKSPACE, "robot"), NOW, is_bot=True)
    async with sessions() as session:
        assert (await session.get_one(models.Member, robot)).is_bot
        assert ids.get(session.info, ("member", WORKSPACE, "robot")) == ids.KnownMember(robot, True, None)
