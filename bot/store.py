"""Small storage helpers shared by the services: get-or-create rows and conflict-free inserts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from bot import models
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef


def insert_ignoring_conflicts(session: AsyncSession, model: type[models.Base], **values: Any) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` for the session's dialect; a unique row is written once."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    if dialect == "postgresql":
        return postgresql.insert(model).values(**values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(model).values(**values).on_conflict_do_nothing()
    return insert(model).values(**values)


async def _get_or_insert(session: AsyncSession, query: Select[tuple[int]], model: type[models.Base], **values: Any) -> int:
    found = await session.scalar(query)
    if found is not None:
        return found
    await session.execute(insert_ignoring_conflicts(session, model, **values))
    return (await session.scalars(query)).one()


async def workspace_id(session: AsyncSession, ref: WorkspaceRef, now: datetime) -> int:
    query = select(models.Workspace.id).where(
        models.Workspace.platform == ref.platform, models.Workspace.external_id == ref.id)
    return await _get_or_insert(session, query, models.Workspace, platform=ref.platform, external_id=ref.id, created_at=now)


async def member_id(session: AsyncSession, ref: UserRef, now: datetime, *, is_bot: bool = False) -> int:
    """The member's id, created on first sight; a member once seen as a bot stays marked as one."""
    workspace = await workspace_id(session, ref.workspace, now)
    row = (await session.execute(select(models.Member.id, models.Member.is_bot, models.Member.display_name).where(
        models.Member.workspace_id == workspace, models.Member.external_id == ref.id))).first()
    if row is None:
        await session.execute(insert_ignoring_conflicts(
            session, models.Member, workspace_id=workspace, external_id=ref.id,
            display_name=ref.name, is_bot=is_bot, created_at=now))
        return (await session.scalars(select(models.Member.id).where(
            models.Member.workspace_id == workspace, models.Member.external_id == ref.id))).one()
    if (is_bot and not row.is_bot) or (ref.name and ref.name != row.display_name):
        member = await session.get_one(models.Member, row.id)
        member.is_bot = member.is_bot or is_bot
        member.display_name = ref.name or member.display_name
    return row.id


async def find_channel(session: AsyncSession, ref: ChannelRef) -> models.Channel | None:
    return await session.scalar(
        select(models.Channel).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ))


async def find_channel_id(session: AsyncSession, ref: ChannelRef) -> int | None:
    return await session.scalar(
        select(models.Channel.id).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ))


async def lock_channel(session: AsyncSession, ref: ChannelRef) -> int | None:
    """The channel's id, holding its row until the transaction ends; `None` if it has no schedule.

    Answer and reaction events read a row, then write from what they read. Two such events on one
    channel handled at once (two processes, or two handlers in one) would each miss the other's
    uncommitted row on PostgreSQL, e.g. a deletion racing its post loses. Holding the channel
    serializes them there; SQLite's immediate transactions already do.
    """
    return await session.scalar(
        select(models.Channel.id).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ).with_for_update(of=models.Channel))


async def find_prompt(session: AsyncSession, channel_id: int, thread: MessageRef) -> models.Prompt | None:
    """The posted prompt whose message roots `thread`, if it is one."""
    return await session.scalar(select(models.Prompt).where(
        models.Prompt.channel_id == channel_id, models.Prompt.message_id == thread.id))


async def channel_ref(session: AsyncSession, channel: models.Channel) -> ChannelRef:
    workspace = await session.get_one(models.Workspace, channel.workspace_id)
    return ChannelRef(WorkspaceRef(workspace.platform, workspace.external_id), channel.external_id)


async def latest_prompt(session: AsyncSession, channel_id: int, before: date | None = None) -> models.Prompt | None:
    """The channel's most recent posted prompt (before local date `before`, if given)."""
    query = select(models.Prompt).where(models.Prompt.channel_id == channel_id, models.Prompt.status == "posted")
    if before is not None:
        query = query.where(models.Prompt.local_date < before)
    return await session.scalar(query.order_by(models.Prompt.local_date.desc()).limit(1))
