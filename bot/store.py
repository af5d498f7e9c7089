"""Small storage helpers shared by the services: get-or-create rows and conflict-free inserts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from bot import ids, models, tallies
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef


def dialect_insert(dialect: str, model: type[models.Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's `ON CONFLICT` clauses: PostgreSQL's, or else SQLite's."""
    return postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)


def insert_ignoring_conflicts(session: AsyncSession, model: type[models.Base], **values: Any) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING`; a unique row is written once."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return dialect_insert(dialect, model).values(**values).on_conflict_do_nothing()


async def _get_or_insert(session: AsyncSession, query: Select[int], model: type[models.Base], **values: Any) -> int:
    found = await session.scalar(query)
    if found is not None:
        return found
    await session.execute(insert_ignoring_conflicts(session, model, **values))
    return (await session.scalars(query)).one()


async def workspace_id(session: AsyncSession, ref: WorkspaceRef, now: datetime) -> int:
    key = ("workspace", ref)
    if (known := ids.get(session.info, key)) is not None:
        return int(known)
    query = select(models.Workspace.id).where(
        models.Workspace.platform == ref.platform, models.Workspace.external_id == ref.id)
    found = await _get_or_insert(session, query, models.Workspace, platform=ref.platform, external_id=ref.id, created_at=now)
    ids.put(session.info, key, found)
    return found


async def member_id(session: AsyncSession, ref: UserRef, now: datetime, *, is_bot: bool = False) -> int:
    """The member's id, created on first sight; a member once seen as a bot stays marked as one."""
    key = ("member", ref.workspace, ref.id)
    known: ids.KnownMember | None = ids.get(session.info, key)
    if known is not None and (known.is_bot or not is_bot) and (not ref.name or ref.name == known.name):
        return known.id
    workspace = await workspace_id(session, ref.workspace, now)
    query = select(models.Member.id, models.Member.is_bot, models.Member.display_name).where(
        models.Member.workspace_id == workspace, models.Member.external_id == ref.id)
    row = (await session.execute(query)).first()
    if row is None:
        await session.execute(insert_ignoring_conflicts(
            session, models.Member, workspace_id=workspace, external_id=ref.id,
            display_name=ref.name, is_bot=is_bot, created_at=now))
        row = (await session.execute(query)).one()
    bot, name = row.is_bot, row.display_name
    if (is_bot and not bot) or (ref.name and ref.name != name):
        found = await session.get_one(models.Member, row.id)
        found.is_bot, found.display_name = bot or is_bot, ref.name or name
        if is_bot and not bot:
            await _became_a_bot(session, row.id)
        bot, name = found.is_bot, found.display_name
    ids.put(session.info, key, ids.KnownMember(row.id, bot, name))
    return int(row.id)


async def _became_a_bot(session: AsyncSession, member_id: int) -> None:
    """A member turned out to be a bot: neither its ratings nor ratings of its replies count any more."""
    await session.flush()
    replies = (await session.execute(
        select(models.Answer.channel_id, models.Answer.message_id).where(models.Answer.member_id == member_id))).all()
    for channel_id, message_id in replies:
        await tallies.refresh(session, channel_id, message_id)
    await tallies.refresh_rated_by(session, member_id)


async def find_channel(session: AsyncSession, ref: ChannelRef) -> models.Channel | None:
    return await session.scalar(
        select(models.Channel).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ))


async def find_channel_id(session: AsyncSession, ref: ChannelRef) -> int | None:
    key = ("channel", ref)
    if (known := ids.get(session.info, key)) is not None:
        return int(known)
    found = await session.scalar(
        select(models.Channel.id).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ))
    if found is not None:  # an unknown channel may be set up at any moment, so only ids are kept
        ids.put(session.info, key, found)
    return found


async def lock_channel(session: AsyncSession, ref: ChannelRef) -> int | None:
    """The channel's id, holding its row until the transaction ends; `None` if it has no schedule.

    Answer and reaction events read a row, then write from what they read. Two such events on one
    channel handled at once (two processes, or two handlers in one) would each miss the other's
    uncommitted row on PostgreSQL, e.g. a deletion racing its post loses. Holding the channel
    serializes them there; SQLite's immediate transactions already do, so it costs nothing there.
    """
    channel_id = await find_channel_id(session, ref)
    if channel_id is not None and session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(select(models.Channel.id).where(models.Channel.id == channel_id).with_for_update())
    return channel_id


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
