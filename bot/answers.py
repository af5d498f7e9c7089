"""Answers and rating reactions, recorded so that redelivery, in any order, changes nothing.

Every change is stamped with the platform's event time: an event older than what a row already
reflects is ignored, a deletion that arrives before its post leaves a tombstone, and an edit that
does (without naming its author) leaves a pending row; the post, or an edit naming the author, fills
either in.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Delete, Select, bindparam, delete, func, select
from sqlalchemy.sql.dml import Insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models, tallies
from bot.events import AnswerDeleted, AnswerEdited, AnswerPosted, ReactionAdded, ReactionRemoved
from bot.refs import MessageRef
from bot.models import UTCDateTime
from bot.store import dialect_insert, find_prompt, insert_ignoring_conflicts, lock_channel, member_id

logger = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 12_000
RATING_EMOJI = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


@dataclass(frozen=True, slots=True)
class AnswerRecorded:
    """A member's first answer to a prompt was recorded: the caller shows them the rubric."""

    question_id: int
    first_for_member: bool


@dataclass(frozen=True, slots=True)
class AnswerTooLong:
    length: int


async def record_answer(session: AsyncSession, event: AnswerPosted | AnswerEdited, now: datetime) -> AnswerRecorded | AnswerTooLong | None:
    """Record a reply in a prompt's thread, or an edit; `None` when it is not an answer or changes nothing."""
    channel_id = await lock_channel(session, event.message.channel)
    if channel_id is None:
        return None
    too_long = event.text is not None and len(event.text) > MAX_ANSWER_CHARS
    existing = await _answer(session, channel_id, event.message)
    if isinstance(event, AnswerEdited) and existing is not None:
        if existing.withdrawn_at is None and _newer(event.at, existing.text_changed_at):
            if too_long:
                return AnswerTooLong(len(event.text or ""))
            existing.text, existing.text_changed_at = event.text, event.at
        if existing.prompt_id is not None or event.author is None:
            if existing.prompt_id is not None and event.author is not None and not too_long:
                _posted_by(existing, event.at)  # an older edit naming the author: the answer stood by then
            return None
        # Else the row only holds what overtook the post (a deletion, an authorless edit), and this
        # edit says whose answer it is: place it below, as the post itself would.

    thread, author = event.thread, event.author
    if thread is None:
        return None  # an edit of a message we never saw, with no thread to place it in
    prompt = await find_prompt(session, channel_id, thread)
    if prompt is None or prompt.status != "posted":
        return None
    if author is None:
        # An edit that overtook its post, without saying whose it is: keep the newer text pending,
        # like a tombstone, so the post fills in the rest instead of bringing back the old words.
        if too_long:
            return AnswerTooLong(len(event.text or ""))
        await session.execute(insert_ignoring_conflicts(
            session, models.Answer, channel_id=channel_id, message_id=event.message.id, prompt_id=None,
            member_id=None, text=event.text, posted_at=None, text_changed_at=event.at, withdrawn_at=None))
        return None
    if isinstance(event, AnswerPosted) and event.author_is_bot:
        await member_id(session, author, now, is_bot=True)
        return None
    if too_long:
        return AnswerTooLong(len(event.text or ""))
    member = await member_id(session, author, now)
    earlier = await session.scalar(select(models.Answer.id).where(
        models.Answer.prompt_id == prompt.id, models.Answer.member_id == member, models.Answer.withdrawn_at.is_(None)).limit(1))
    if existing is not None:
        # The post was overtaken by its deletion (a tombstone) or by an edit: keep what came later,
        # and fill in whose answer it is and when it was first posted.
        if existing.withdrawn_at is None and _newer(event.at, existing.text_changed_at):
            existing.text, existing.text_changed_at = event.text, event.at
        _posted_by(existing, event.at)
        if existing.prompt_id is not None:
            return None
        existing.prompt_id, existing.member_id = prompt.id, member
        await tallies.refresh(session, channel_id, event.message.id)  # reactions may have come first
        if existing.withdrawn_at is not None or prompt.question_id is None:
            return None
        return AnswerRecorded(prompt.question_id, first_for_member=earlier is None)
    inserted = await session.scalar(insert_ignoring_conflicts(
        session, models.Answer, channel_id=channel_id, message_id=event.message.id, prompt_id=prompt.id,
        member_id=member, text=event.text, posted_at=event.at, text_changed_at=event.at, withdrawn_at=None,
    ).returning(models.Answer.id))
    if inserted is None:
        return None
    await tallies.refresh(session, channel_id, event.message.id)  # reactions may have come first
    if prompt.question_id is None:
        return None
    return AnswerRecorded(prompt.question_id, first_for_member=earlier is None)


async def withdraw_answer(session: AsyncSession, event: AnswerDeleted) -> bool:
    """Withdraw an answer (and so its ratings); a deletion seen first leaves a tombstone."""
    channel_id = await lock_channel(session, event.message.channel)
    if channel_id is None:
        return False
    existing = await _answer(session, channel_id, event.message)
    if existing is None:
        await session.execute(insert_ignoring_conflicts(
            session, models.Answer, channel_id=channel_id, message_id=event.message.id, prompt_id=None,
            member_id=None, text=None, posted_at=None, text_changed_at=None, withdrawn_at=event.at))
        return False
    if existing.withdrawn_at is None:
        existing.withdrawn_at = event.at
        existing.text = None  # the member deleted it: keep no copy of the words
        await tallies.refresh(session, channel_id, event.message.id)
        return True
    return False


async def record_reaction(session: AsyncSession, event: ReactionAdded | ReactionRemoved, now: datetime) -> bool:
    """Apply a rating reaction; return whether it changed anything (a late, older event does not)."""
    score = RATING_EMOJI.get(event.emoji)
    if score is None:
        return False
    channel_id = await lock_channel(session, event.message.channel)
    if channel_id is None:
        return False
    rater = await member_id(session, event.reactor, now, is_bot=event.reactor_is_bot)
    added = isinstance(event, ReactionAdded)
    await session.flush()
    connection = await session.connection()
    dialect = connection.dialect.name
    key = {"channel": channel_id, "message": event.message.id, "rater": rater}
    moved = (await connection.execute(
        _move_reaction(dialect), {**key, "score": score, "present": added, "added_at": event.at if added else None, "at": event.at},
    )).first()
    if moved is None:
        return False
    in_force = (await connection.execute(_reaction_in_force(), key)).first()
    if in_force is None:
        await connection.execute(_drop_rating(), key)
    else:
        await connection.execute(_upsert_rating(dialect), {**key, "score": in_force.score, "at": in_force.added_at or now})
    await tallies.refresh(session, channel_id, event.message.id)
    return True


# The hot path's statements, built once (per dialect) with bound parameters and run as Core.
_REACTIONS = models.Base.metadata.tables["rating_reactions"]
_RATINGS = models.Base.metadata.tables["ratings"]


@functools.cache
def _move_reaction(dialect: str) -> Insert:
    """Write a reaction's row, or move it on when this event is newer than what it reflects.

    An older, redelivered or reordered event matches nothing and returns no row.
    """
    at = bindparam("at", type_=UTCDateTime())
    added_at = bindparam("added_at", type_=UTCDateTime())
    return (
        dialect_insert(dialect, models.RatingReaction)
        .values(channel_id=bindparam("channel"), message_id=bindparam("message"), rater_id=bindparam("rater"),
                score=bindparam("score"), present=bindparam("present"), added_at=added_at, changed_at=at)
        .on_conflict_do_update(
            index_elements=["channel_id", "message_id", "rater_id", "score"],
            set_={"present": bindparam("present"), "changed_at": at,
                  "added_at": func.coalesce(added_at, _REACTIONS.c.added_at)},
            where=_REACTIONS.c.changed_at < at,
        )
        .returning(_REACTIONS.c.id)
    )


@functools.cache
def _reaction_in_force() -> Select[int, datetime | None]:
    """The rating in force: the most recently added reaction still present."""
    return (
        select(_REACTIONS.c.score, _REACTIONS.c.added_at)
        .where(_REACTIONS.c.channel_id == bindparam("channel"), _REACTIONS.c.message_id == bindparam("message"),
               _REACTIONS.c.rater_id == bindparam("rater"), _REACTIONS.c.present.is_(True))
        .order_by(_REACTIONS.c.added_at.desc(), _REACTIONS.c.score.desc())
        .limit(1)
    )


@functools.cache
def _drop_rating() -> Delete:
    return delete(_RATINGS).where(
        _RATINGS.c.channel_id == bindparam("channel"), _RATINGS.c.message_id == bindparam("message"),
        _RATINGS.c.rater_id == bindparam("rater"))


@functools.cache
def _upsert_rating(dialect: str) -> Insert:
    # Even when the score stays, a re-added reaction is the rating now: it takes the re-add's time.
    at = bindparam("at", type_=UTCDateTime())
    return (
        dialect_insert(dialect, models.Rating)
        .values(channel_id=bindparam("channel"), message_id=bindparam("message"), rater_id=bindparam("rater"),
                score=bindparam("score"), rated_at=at)
        .on_conflict_do_update(index_elements=["channel_id", "message_id", "rater_id"],
                               set_={"score": bindparam("score"), "rated_at": at})
    )


async def _answer(session: AsyncSession, channel_id: int, message: MessageRef) -> models.Answer | None:
    return await session.scalar(select(models.Answer).where(
        models.Answer.channel_id == channel_id, models.Answer.message_id == message.id))


def _posted_by(answer: models.Answer, at: datetime) -> None:
    """An answer's time is that of the earliest event that could have recorded it, as in-order delivery keeps."""
    if answer.posted_at is None or at < answer.posted_at:
        answer.posted_at = at


def _newer(at: datetime, than: datetime | None) -> bool:
    return than is None or at > than
