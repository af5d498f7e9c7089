"""Answers and rating reactions, recorded so that redelivery, in any order, changes nothing.

Every change is stamped with the platform's event time: an event older than what a row already
reflects is ignored, a deletion that arrives before its post leaves a tombstone, and an edit that
does (without naming its author) leaves a pending row; the post, or an edit naming the author, fills
either in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models
from bot.events import AnswerDeleted, AnswerEdited, AnswerPosted, ReactionAdded, ReactionRemoved
from bot.refs import MessageRef
from bot.store import find_prompt, insert_ignoring_conflicts, lock_channel, member_id

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
        if existing.withdrawn_at is not None or prompt.question_id is None:
            return None
        return AnswerRecorded(prompt.question_id, first_for_member=earlier is None)
    inserted = await session.scalar(insert_ignoring_conflicts(
        session, models.Answer, channel_id=channel_id, message_id=event.message.id, prompt_id=prompt.id,
        member_id=member, text=event.text, posted_at=event.at, text_changed_at=event.at, withdrawn_at=None,
    ).returning(models.Answer.id))
    if inserted is None or prompt.question_id is None:
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
        return True
    return False


async def record_reaction(session: AsyncSession, event: ReactionAdded | ReactionRemoved, now: datetime) -> bool:
    """Apply a rating reaction; return whether the rating in force for (message, rater) changed."""
    score = RATING_EMOJI.get(event.emoji)
    if score is None:
        return False
    channel_id = await lock_channel(session, event.message.channel)
    if channel_id is None:
        return False
    rater = await member_id(session, event.reactor, now, is_bot=event.reactor_is_bot)
    added = isinstance(event, ReactionAdded)
    row = await session.scalar(select(models.RatingReaction).where(
        models.RatingReaction.channel_id == channel_id, models.RatingReaction.message_id == event.message.id,
        models.RatingReaction.rater_id == rater, models.RatingReaction.score == score))
    if row is None:
        await session.execute(insert_ignoring_conflicts(
            session, models.RatingReaction, channel_id=channel_id, message_id=event.message.id, rater_id=rater,
            score=score, present=added, added_at=event.at if added else None, changed_at=event.at))
    elif _newer(event.at, row.changed_at):
        row.present, row.changed_at = added, event.at
        if added:
            row.added_at = event.at
    else:
        return False
    await session.flush()
    return await _settle_rating(session, channel_id, event.message.id, rater, now)


async def _settle_rating(session: AsyncSession, channel_id: int, message_id: str, rater: int, now: datetime) -> bool:
    """Make the rating in force the most recently added reaction still present, or none."""
    in_force = (await session.execute(
        select(models.RatingReaction.score, models.RatingReaction.added_at)
        .where(models.RatingReaction.channel_id == channel_id, models.RatingReaction.message_id == message_id,
               models.RatingReaction.rater_id == rater, models.RatingReaction.present.is_(True))
        .order_by(models.RatingReaction.added_at.desc(), models.RatingReaction.score.desc()).limit(1)
    )).first()
    rating = await session.scalar(select(models.Rating).where(
        models.Rating.channel_id == channel_id, models.Rating.message_id == message_id, models.Rating.rater_id == rater))
    if in_force is None:
        if rating is None:
            return False
        await session.execute(delete(models.Rating).where(models.Rating.id == rating.id))
        return True
    if rating is None:
        session.add(models.Rating(channel_id=channel_id, message_id=message_id, rater_id=rater,
                                  score=in_force.score, rated_at=in_force.added_at or now))
        return True
    changed = rating.score != in_force.score
    # Even when the score stays, a re-added reaction is the rating now in force: take its time, as
    # an in-order delivery (add, remove, add again) would have.
    rating.score, rating.rated_at = in_force.score, in_force.added_at or now
    return changed


async def _answer(session: AsyncSession, channel_id: int, message: MessageRef) -> models.Answer | None:
    return await session.scalar(select(models.Answer).where(
        models.Answer.channel_id == channel_id, models.Answer.message_id == message.id))


def _posted_by(answer: models.Answer, at: datetime) -> None:
    """An answer's time is that of the earliest event that could have recorded it, as in-order delivery keeps."""
    if answer.posted_at is None or at < answer.posted_at:
        answer.posted_at = at


def _newer(at: datetime, than: datetime | None) -> bool:
    return than is None or at > than
