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

from sqlalchemy import Delete, bindparam, delete, exists, func, select
from sqlalchemy.sql.dml import Insert
from sqlalchemy.orm import Session

from bot import models, tallies
from bot.events import AnswerDeleted, AnswerEdited, AnswerPosted, ReactionAdded, ReactionRemoved
from bot.refs import MessageRef
from bot.models import UTCDateTime
from bot.prepared import Prepared
from bot.store import dialect_insert, insert_ignoring_conflicts, lock_channel, member_id

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


def record_answer(session: Session, event: AnswerPosted | AnswerEdited, now: datetime) -> AnswerRecorded | AnswerTooLong | None:
    """Record a reply in a prompt's thread, or an edit; `None` when it is not an answer or changes nothing."""
    channel_id = lock_channel(session, event.message.channel)
    if channel_id is None:
        return None
    too_long = event.text is not None and len(event.text) > MAX_ANSWER_CHARS
    existing = _answer(session, channel_id, event.message)
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
    found = _PROMPT_IN_THREAD.rows(session, {"channel": channel_id, "thread": thread.id})
    if not found:
        return None
    [(prompt_id, question_id)] = found
    if author is None:
        # An edit that overtook its post, without saying whose it is: keep the newer text pending,
        # like a tombstone, so the post fills in the rest instead of bringing back the old words.
        if too_long:
            return AnswerTooLong(len(event.text or ""))
        session.execute(insert_ignoring_conflicts(
            session, models.Answer, channel_id=channel_id, message_id=event.message.id, prompt_id=None,
            member_id=None, text=event.text, posted_at=None, text_changed_at=event.at, withdrawn_at=None))
        return None
    if isinstance(event, AnswerPosted) and event.author_is_bot:
        member_id(session, author, now, is_bot=True)
        return None
    if too_long:
        return AnswerTooLong(len(event.text or ""))
    member = member_id(session, author, now)
    first_for_member = not _EARLIER_ANSWER.rows(session, {"prompt": prompt_id, "member": member})
    if existing is not None:
        # The post was overtaken by its deletion (a tombstone) or by an edit: keep what came later,
        # and fill in whose answer it is and when it was first posted.
        if existing.withdrawn_at is None and _newer(event.at, existing.text_changed_at):
            existing.text, existing.text_changed_at = event.text, event.at
        _posted_by(existing, event.at)
        if existing.prompt_id is not None:
            return None
        existing.prompt_id, existing.member_id = prompt_id, member
        tallies.refresh(session, channel_id, event.message.id)  # reactions may have come first
        if existing.withdrawn_at is not None or question_id is None:
            return None
        return AnswerRecorded(question_id, first_for_member)
    if not _ADD_ANSWER.rows(session, {"channel": channel_id, "message": event.message.id, "prompt": prompt_id,
                                      "member": member, "text": event.text, "at": event.at}):
        return None
    tallies.refresh(session, channel_id, event.message.id)  # reactions may have come first
    if question_id is None:
        return None
    return AnswerRecorded(question_id, first_for_member)


def withdraw_answer(session: Session, event: AnswerDeleted) -> bool:
    """Withdraw an answer (and so its ratings); a deletion seen first leaves a tombstone."""
    channel_id = lock_channel(session, event.message.channel)
    if channel_id is None:
        return False
    existing = _answer(session, channel_id, event.message)
    if existing is None:
        session.execute(insert_ignoring_conflicts(
            session, models.Answer, channel_id=channel_id, message_id=event.message.id, prompt_id=None,
            member_id=None, text=None, posted_at=None, text_changed_at=None, withdrawn_at=event.at))
        return False
    if existing.withdrawn_at is None:
        existing.withdrawn_at = event.at
        existing.text = None  # the member deleted it: keep no copy of the words
        tallies.refresh(session, channel_id, event.message.id)
        return True
    return False


def record_reaction(session: Session, event: ReactionAdded | ReactionRemoved, now: datetime) -> bool:
    """Apply a rating reaction; return whether it changed anything (a late, older event does not)."""
    score = RATING_EMOJI.get(event.emoji)
    if score is None:
        return False
    channel_id = lock_channel(session, event.message.channel)
    if channel_id is None:
        return False
    rater = member_id(session, event.reactor, now, is_bot=event.reactor_is_bot)
    added = isinstance(event, ReactionAdded)
    key = {"channel": channel_id, "message": event.message.id, "rater": rater}
    if not _MOVE_REACTION.rows(session, {**key, "score": score, "present": added, "added_at": event.at if added else None, "at": event.at}):
        return False
    if not added:
        _DROP_UNRATED.run(session, key)  # an add leaves a reaction present
    _RATE_FROM_REACTIONS.run(session, {**key, "now": now})
    tallies.recount(session, channel_id, event.message.id)
    return True


# The hot path's statements, with bound parameters, compiled once per dialect (`bot.prepared`).
_REACTIONS = models.Base.metadata.tables["rating_reactions"]
_RATINGS = models.Base.metadata.tables["ratings"]
_ON_REACTION_KEY = (_REACTIONS.c.channel_id == bindparam("channel"), _REACTIONS.c.message_id == bindparam("message"),
                    _REACTIONS.c.rater_id == bindparam("rater"))
_ON_RATING_KEY = (_RATINGS.c.channel_id == bindparam("channel"), _RATINGS.c.message_id == bindparam("message"),
                  _RATINGS.c.rater_id == bindparam("rater"))


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


def _drop_unrated(dialect: str) -> Delete:
    """Drop the rating when no rating reaction of the rater's is present on the message any more."""
    return delete(_RATINGS).where(*_ON_RATING_KEY, ~exists().where(*_ON_REACTION_KEY, _REACTIONS.c.present.is_(True)))


def _rate_from_reactions(dialect: str) -> Insert:
    """Make the rating in force the most recently added reaction still present.

    Even when the score stays, a re-added reaction is the rating now: it takes the re-add's time.
    A new rating is marked as counting or not as it is written; a rating's mark changes only with
    its answer or its members, whose changes refresh the whole message (`bot.tallies`).
    """
    in_force = (
        select(_REACTIONS.c.channel_id, _REACTIONS.c.message_id, _REACTIONS.c.rater_id, _REACTIONS.c.score,
               func.coalesce(_REACTIONS.c.added_at, bindparam("now", type_=UTCDateTime())),
               tallies.counts(_REACTIONS.c.channel_id, _REACTIONS.c.message_id, _REACTIONS.c.rater_id))
        .where(*_ON_REACTION_KEY, _REACTIONS.c.present.is_(True))
        .order_by(_REACTIONS.c.added_at.desc(), _REACTIONS.c.score.desc())
        .limit(1)
    )
    insert = dialect_insert(dialect, models.Rating).from_select(
        ["channel_id", "message_id", "rater_id", "score", "rated_at", "counted"], in_force, include_defaults=False)
    return insert.on_conflict_do_update(
        index_elements=["channel_id", "message_id", "rater_id"],
        set_={"score": insert.excluded.score, "rated_at": insert.excluded.rated_at})


_ANSWERS = models.Base.metadata.tables["answers"]
_PROMPTS = models.Base.metadata.tables["prompts"]
_ANSWER_ID = Prepared(lambda dialect: select(_ANSWERS.c.id).where(
    _ANSWERS.c.channel_id == bindparam("channel"), _ANSWERS.c.message_id == bindparam("message")))
# The posted prompt whose message roots the thread, as `bot.store.find_prompt` finds it, less the ORM object.
_PROMPT_IN_THREAD = Prepared(lambda dialect: select(_PROMPTS.c.id, _PROMPTS.c.question_id).where(
    _PROMPTS.c.channel_id == bindparam("channel"), _PROMPTS.c.message_id == bindparam("thread"),
    _PROMPTS.c.status == "posted"))
_EARLIER_ANSWER = Prepared(lambda dialect: select(_ANSWERS.c.id).where(
    _ANSWERS.c.prompt_id == bindparam("prompt"), _ANSWERS.c.member_id == bindparam("member"),
    _ANSWERS.c.withdrawn_at.is_(None)).limit(1))


def _add_answer(dialect: str) -> Insert:
    at = bindparam("at", type_=UTCDateTime())
    return dialect_insert(dialect, models.Answer).values(
        channel_id=bindparam("channel"), message_id=bindparam("message"), prompt_id=bindparam("prompt"),
        member_id=bindparam("member"), text=bindparam("text"), posted_at=at, text_changed_at=at, withdrawn_at=None,
    ).on_conflict_do_nothing().returning(_ANSWERS.c.id)


_ADD_ANSWER = Prepared(_add_answer)
_MOVE_REACTION = Prepared(_move_reaction)
_DROP_UNRATED = Prepared(_drop_unrated)
_RATE_FROM_REACTIONS = Prepared(_rate_from_reactions)


def _answer(session: Session, channel_id: int, message: MessageRef) -> models.Answer | None:
    """The message's answer row, if any: most messages have none, so look for its id first."""
    found = _ANSWER_ID.rows(session, {"channel": channel_id, "message": message.id})
    return session.get_one(models.Answer, found[0][0]) if found else None


def _posted_by(answer: models.Answer, at: datetime) -> None:
    """An answer's time is that of the earliest event that could have recorded it, as in-order delivery keeps."""
    if answer.posted_at is None or at < answer.posted_at:
        answer.posted_at = at


def _newer(at: datetime, than: datetime | None) -> bool:
    return than is None or at > than
