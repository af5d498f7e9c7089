"""Answers and rating reactions, recorded so that redelivery, in any order, changes nothing.

Every change is stamped with the platform's event time: an event older than what a row already
reflects is ignored, and a deletion that arrives before its post leaves a tombstone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models, tallies
from bot.events import AnswerDeleted, AnswerEdited, AnswerPosted, ReactionAdded, ReactionRemoved
from bot.refs import MessageRef
from bot.store import dialect_insert, find_channel_id, find_prompt, insert_ignoring_conflicts, member_id

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
    channel_id = await find_channel_id(session, event.message.channel)
    if channel_id is None:
        return None
    existing = await _answer(session, channel_id, event.message)
    if isinstance(event, AnswerEdited) and existing is not None:
        if existing.withdrawn_at is None and existing.prompt_id is not None and _newer(event.at, existing.text_changed_at):
            if event.text is not None and len(event.text) > MAX_ANSWER_CHARS:
                return AnswerTooLong(len(event.text))
            existing.text, existing.text_changed_at = event.text, event.at
        return None

    thread, author = event.thread, event.author
    if thread is None or author is None:
        return None  # an edit of a message we never saw, with no thread to place it in
    prompt = await find_prompt(session, channel_id, thread)
    if prompt is None or prompt.status != "posted":
        return None
    if isinstance(event, AnswerPosted) and event.author_is_bot:
        await member_id(session, author, now, is_bot=True)
        return None
    if event.text is not None and len(event.text) > MAX_ANSWER_CHARS:
        return AnswerTooLong(len(event.text))
    member = await member_id(session, author, now)
    if existing is not None:
        if existing.prompt_id is None:  # a tombstone: the deletion came first; keep it withdrawn
            existing.prompt_id, existing.member_id, existing.posted_at = prompt.id, member, event.at
            await tallies.refresh(session, channel_id, event.message.id)
        return None
    earlier = await session.scalar(select(models.Answer.id).where(
        models.Answer.prompt_id == prompt.id, models.Answer.member_id == member, models.Answer.withdrawn_at.is_(None)).limit(1))
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
    channel_id = await find_channel_id(session, event.message.channel)
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
    channel_id = await find_channel_id(session, event.message.channel)
    if channel_id is None:
        return False
    rater = await member_id(session, event.reactor, now, is_bot=event.reactor_is_bot)
    added = isinstance(event, ReactionAdded)
    reaction = models.RatingReaction.__table__
    # One statement whatever came before: the reaction's row is written, or moved on if this event
    # is newer than what the row reflects; an older, redelivered or reordered event changes nothing.
    moved = await session.scalar(
        dialect_insert(session, models.RatingReaction)
        .values(channel_id=channel_id, message_id=event.message.id, rater_id=rater, score=score,
                present=added, added_at=event.at if added else None, changed_at=event.at)
        .on_conflict_do_update(
            index_elements=["channel_id", "message_id", "rater_id", "score"],
            set_={"present": added, "changed_at": event.at, "added_at": event.at if added else reaction.c.added_at},
            where=reaction.c.changed_at < event.at,
        )
        .returning(reaction.c.id)
    )
    if moved is None:
        return False
    await _settle_rating(session, channel_id, event.message.id, rater, now)
    await tallies.refresh(session, channel_id, event.message.id)
    return True


async def _settle_rating(session: AsyncSession, channel_id: int, message_id: str, rater: int, now: datetime) -> None:
    """Make the rating in force the most recently added reaction still present, or none."""
    in_force = (await session.execute(
        select(models.RatingReaction.score, models.RatingReaction.added_at)
        .where(models.RatingReaction.channel_id == channel_id, models.RatingReaction.message_id == message_id,
               models.RatingReaction.rater_id == rater, models.RatingReaction.present.is_(True))
        .order_by(models.RatingReaction.added_at.desc(), models.RatingReaction.score.desc()).limit(1)
    )).first()
    on_rating = (models.Rating.channel_id == channel_id, models.Rating.message_id == message_id, models.Rating.rater_id == rater)
    if in_force is None:
        await session.execute(delete(models.Rating).where(*on_rating))
        return
    rated_at = in_force.added_at or now
    await session.execute(
        dialect_insert(session, models.Rating)
        .values(channel_id=channel_id, message_id=message_id, rater_id=rater, score=in_force.score, rated_at=rated_at)
        .on_conflict_do_update(
            index_elements=["channel_id", "message_id", "rater_id"], set_={"score": in_force.score, "rated_at": rated_at})
    )


async def _answer(session: AsyncSession, channel_id: int, message: MessageRef) -> models.Answer | None:
    return await session.scalar(select(models.Answer).where(
        models.Answer.channel_id == channel_id, models.Answer.message_id == message.id))


def _newer(at: datetime, than: datetime | None) -> bool:
    return than is None or at > than
