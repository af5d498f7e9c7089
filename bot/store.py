"""Small storage helpers shared by the services: get-or-create rows and conflict-free inserts.

The lookups the answer and reaction path makes for every event are sync code over a `Session`, so
that a batch of events runs in one go (`bot.batching`); async callers run them with
`await session.run_sync(...)`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from bot import ids, models, tallies
from bot.models import UTCDateTime
from bot.prepared import Prepared, per_transaction
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef


def dialect_insert(dialect: str, model: type[models.Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's `ON CONFLICT` clauses: PostgreSQL's, or else SQLite's."""
    return postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)


def insert_ignoring_conflicts(session: AsyncSession | Session, model: type[models.Base], **values: Any) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING`; a unique row is written once."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return dialect_insert(dialect, model).values(**values).on_conflict_do_nothing()


def _get_or_insert(session: Session, query: Select[int], model: type[models.Base], **values: Any) -> int:
    found = session.scalar(query)
    if found is not None:
        return found
    session.execute(insert_ignoring_conflicts(session, model, **values))
    return session.scalars(query).one()


def workspace_id(session: Session, ref: WorkspaceRef, now: datetime) -> int:
    key = ("workspace", ref)
    if (known := ids.get(session.info, key)) is not None:
        return int(known)
    query = select(models.Workspace.id).where(
        models.Workspace.platform == ref.platform, models.Workspace.external_id == ref.id)
    found = _get_or_insert(session, query, models.Workspace, platform=ref.platform, external_id=ref.id, created_at=now)
    ids.put(session.info, key, found)
    return found


def member_id(session: Session, ref: UserRef, now: datetime, *, is_bot: bool = False) -> int:
    """The member's id, created on first sight; a member once seen as a bot stays marked as one."""
    key = ("member", ref.workspace, ref.id)
    known: ids.KnownMember | None = ids.get(session.info, key)
    if known is not None and (known.is_bot or not is_bot) and (not ref.name or ref.name == known.name):
        return known.id
    workspace = workspace_id(session, ref.workspace, now)
    member = {"workspace": workspace, "external_id": ref.id}
    rows = _FIND_MEMBER.rows(session, member)
    if not rows:
        _ADD_MEMBER.run(session, {**member, "name": ref.name, "is_bot": is_bot, "at": now})
        rows = _FIND_MEMBER.rows(session, member)
    [(found_id, bot, name)] = rows
    bot = bool(bot)  # SQLite's driver gives 0 or 1
    if (is_bot and not bot) or (ref.name and ref.name != name):
        found = session.get_one(models.Member, found_id)
        found.is_bot, found.display_name = bot or is_bot, ref.name or name
        if is_bot and not bot:
            _became_a_bot(session, found_id)
        bot, name = found.is_bot, found.display_name
    ids.put(session.info, key, ids.KnownMember(found_id, bot, name))
    return int(found_id)


_MEMBERS = models.Base.metadata.tables["members"]
_FIND_MEMBER = Prepared(lambda dialect: select(_MEMBERS.c.id, _MEMBERS.c.is_bot, _MEMBERS.c.display_name).where(
    _MEMBERS.c.workspace_id == bindparam("workspace"), _MEMBERS.c.external_id == bindparam("external_id")))
_ADD_MEMBER = Prepared(lambda dialect: dialect_insert(dialect, models.Member).values(
    workspace_id=bindparam("workspace"), external_id=bindparam("external_id"), display_name=bindparam("name"),
    is_bot=bindparam("is_bot"), created_at=bindparam("at", type_=UTCDateTime())).on_conflict_do_nothing())


def _became_a_bot(session: Session, member_id: int) -> None:
    """A member turned out to be a bot: neither its ratings nor ratings of its replies count any more."""
    session.flush()
    replies = session.execute(
        select(models.Answer.channel_id, models.Answer.message_id).where(models.Answer.member_id == member_id)).all()
    for channel_id, message_id in replies:
        tallies.refresh(session, channel_id, message_id)
    tallies.refresh_rated_by(session, member_id)


async def find_channel(session: AsyncSession, ref: ChannelRef) -> models.Channel | None:
    return await session.scalar(
        select(models.Channel).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ))


def find_channel_id(session: Session, ref: ChannelRef) -> int | None:
    key = ("channel", ref)
    if (known := ids.get(session.info, key)) is not None:
        return int(known)
    found = session.scalar(
        select(models.Channel.id).join(models.Workspace).where(
            models.Workspace.platform == ref.workspace.platform,
            models.Workspace.external_id == ref.workspace.id,
            models.Channel.external_id == ref.id,
        ))
    if found is not None:  # an unknown channel may be set up at any moment, so only ids are kept
        ids.put(session.info, key, found)
    return found


def lock_channel(session: Session, ref: ChannelRef) -> int | None:
    """The channel's id, holding its row until the transaction ends; `None` if it has no schedule.

    Answer and reaction events read a row, then write from what they read. Two such events on one
    channel handled at once (two processes, or two handlers in one) would each miss the other's
    uncommitted row on PostgreSQL, e.g. a deletion racing its post loses. Holding the channel
    serializes them there; SQLite's immediate transactions already do, so it costs nothing there.
    """
    channel_id = find_channel_id(session, ref)
    if channel_id is not None:
        lock_channel_id(session, channel_id)
    return channel_id


def lock_channel_id(session: Session, channel_id: int) -> None:
    """`lock_channel` for a channel whose id is known."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        locked: set[int] = per_transaction(session, _LOCKED, set)  # a batch of events locks each channel once
        if channel_id not in locked:
            _LOCK_CHANNEL.rows(session, {"channel": channel_id})
            locked.add(channel_id)


_LOCKED = "prepbot.store.locked"  # the channels a session's transaction holds
_CHANNELS = models.Base.metadata.tables["channels"]
_LOCK_CHANNEL = Prepared(lambda dialect: select(_CHANNELS.c.id).where(_CHANNELS.c.id == bindparam("channel")).with_for_update())


def find_prompt(session: Session, channel_id: int, thread: MessageRef) -> models.Prompt | None:
    """The posted prompt whose message roots `thread`, if it is one."""
    return session.scalar(select(models.Prompt).where(
        models.Prompt.channel_id == channel_id, models.Prompt.message_id == thread.id))


def channel_ref(session: Session, channel: models.Channel) -> ChannelRef:
    key = ("workspace ref", channel.workspace_id)  # a workspace's platform and id never change
    workspace: WorkspaceRef | None = ids.get(session.info, key)
    if workspace is None:
        row = session.get_one(models.Workspace, channel.workspace_id)
        workspace = WorkspaceRef(row.platform, row.external_id)
        ids.put(session.info, key, workspace)
    return ChannelRef(workspace, channel.external_id)


def latest_prompt(session: Session, channel_id: int, before: date | None = None) -> models.Prompt | None:
    """The channel's most recent posted prompt (before local date `before`, if given)."""
    query = select(models.Prompt).where(models.Prompt.channel_id == channel_id, models.Prompt.status == "posted")
    if before is not None:
        query = query.where(models.Prompt.local_date < before)
    return session.scalar(query.order_by(models.Prompt.local_date.desc()).limit(1))
