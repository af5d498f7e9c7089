"""Answers and rating reactions, recorded so that redelivery, in any order, changes nothing.

Every change is stamped with the platform's event time: an event older than what a row already
reflects is ignored, a deletion that arrives before its post leaves a tombstone, and an edit that
does (without naming its author) leaves a pending row; the post, or an edit naming the author, fills
either in. A reply that arrives before its thread is known as a prompt's, while the channel's daily
post is in flight, is held until the post is recorded (`settle_held`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, bindparam, delete, exists, func, or_, select
from sqlalchemy.sql.dml import Insert
from sqlalchemy.orm import Session

from bot import models, tallies, views
from bot.actions import PostPrivately
from bot.events import AnswerDeleted, AnswerEdited, AnswerPosted, ReactionAdded, ReactionRemoved
from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef
from bot.models import UTCDateTime
from bot.prepared import Prepared
from bot.store import dialect_insert, insert_ignoring_conflicts, lock_channel, lock_channel_id, member_id

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


def record_answer(
    session: Session, event: AnswerPosted | AnswerEdited, now: datetime, hold_since: datetime,
) -> AnswerRecorded | AnswerTooLong | None:
    """Record a reply in a prompt's thread, or an edit; `None` when it is not an answer or changes nothing.

    A reply in a thread that is no prompt's, while the channel has a post claimed since
    `hold_since` and not yet recorded, is held: the thread may be that post's.
    """
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
        # An edit with no thread to place it in: of a reply held for a post in flight (kept with
        # it), or of a message that is no answer.
        held_in = _HELD_THREAD.rows(session, {"channel": channel_id, "message": event.message.id})
        if held_in:
            _hold(session, channel_id, replace(event, thread=MessageRef(event.message.channel, held_in[0][0])), now)
        return None
    found = _PROMPT_IN_THREAD.rows(session, {"channel": channel_id, "thread": thread.id})
    if not found:
        if _IN_FLIGHT.rows(session, {"channel": channel_id, "since": hold_since}):
            _hold(session, channel_id, event, now)
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


def note_for_author(
    session: Session, event: AnswerPosted | AnswerEdited, outcome: AnswerRecorded | AnswerTooLong | None,
) -> PostPrivately | None:
    """What to tell an answer's author privately: the rubric after a first answer, or why it was refused."""
    if event.author is None:
        return None
    channel = event.message.channel
    if isinstance(outcome, AnswerTooLong):
        return PostPrivately(channel, event.author, thread=event.thread, message=Message.text(
            f"Your answer is {outcome.length:,} characters; answers can be at most {MAX_ANSWER_CHARS:,}. "
            "It was not recorded: shorten it by editing the message and it will count."))
    if isinstance(outcome, AnswerRecorded) and outcome.first_for_member:
        question = session.get_one(models.Question, outcome.question_id)
        return PostPrivately(channel, event.author, thread=event.thread, message=views.rubric_message(
            question, heading="Thanks for answering. Compare your answer with the rubric:"))
    return None


def settle_held(session: Session, channel: ChannelRef, channel_id: int, thread_id: str, now: datetime,
                stale_before: datetime) -> list[PostPrivately]:
    """The channel's post was recorded as message `thread_id`: record the replies held for its thread.

    They are recorded as if they had just arrived, in the order they came; the rest of the
    channel's held replies, to threads that are no prompt's, go once older than `stale_before`.
    Returns the notes their authors are owed (the rubric after a first answer). A channel with
    nothing held, as nearly every post finds it, costs one statement.
    """
    lock_channel_id(session, channel_id)  # a reply being held at this moment is waited for
    taken = session.execute(_SETTLE, {"channel": channel_id, "thread": thread_id, "stale": stale_before}).all()
    thread = MessageRef(channel, thread_id)
    notes = []
    for row in sorted((row for row in taken if row.thread_id == thread_id), key=lambda row: row.id):
        message = MessageRef(channel, row.message_id)
        author = UserRef(channel.workspace, row.author_id, row.author_name) if row.author_id is not None else None
        event: AnswerPosted | AnswerEdited
        if row.kind == "posted" and author is not None:
            event = AnswerPosted(f"held:{row.id}", row.at, message, thread, author, row.text, row.author_is_bot)
        else:
            event = AnswerEdited(f"held:{row.id}", row.at, message, row.text, thread, author)
        if (note := note_for_author(session, event, record_answer(session, event, now, hold_since=now))) is not None:
            notes.append(note)
    return notes


def _hold(session: Session, channel_id: int, event: AnswerPosted | AnswerEdited, now: datetime) -> None:
    assert event.thread is not None
    author = event.author
    _HOLD.run(session, {
        "channel": channel_id, "thread": event.thread.id, "message": event.message.id,
        "kind": "posted" if isinstance(event, AnswerPosted) else "edited",
        "author": author.id if author is not None else None, "name": author.name if author is not None else None,
        "bot": isinstance(event, AnswerPosted) and event.author_is_bot, "text": event.text, "at": event.at, "now": now})
    logger.debug("holding reply %s in %s: its thread may be a post in flight", event.message.id, event.message.channel)


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


def record_reactions(session: Session, events: Sequence[ReactionAdded | ReactionRemoved], now: datetime) -> None:
    """Apply rating reactions together: each reaction's row moves on, then each rating they touch is settled once.

    The rating in force is a function of the rater's reactions on the message (the latest added
    still present), so settling it after all the moves gives what settling it after each one would,
    and a late, older event still moves nothing. Each statement runs once for all the events, in one
    call to the driver: on PostgreSQL one round trip, where a round trip per statement per event
    left the batch waiting on the network.
    """
    moves: list[dict[str, Any]] = []
    touched: dict[tuple[int, str, int], None] = {}  # in order of first sight
    removed: set[tuple[int, str, int]] = set()
    for event in events:
        score = RATING_EMOJI.get(event.emoji)
        if score is None:
            continue
        channel_id = lock_channel(session, event.message.channel)
        if channel_id is None:
            continue
        rater = member_id(session, event.reactor, now, is_bot=event.reactor_is_bot)
        added = isinstance(event, ReactionAdded)
        key = (channel_id, event.message.id, rater)
        moves.append({"channel": channel_id, "message": event.message.id, "rater": rater, "score": score,
                      "present": added, "added_at": event.at if added else None, "at": event.at})
        touched[key] = None
        if not added:
            removed.add(key)  # adds alone leave no rating without a reaction present
    _MOVE_REACTION.run_many(session, moves)
    _DROP_UNRATED.run_many(session, [_reaction_key(key) for key in touched if key in removed])
    _RATE_FROM_REACTIONS.run_many(session, [{**_reaction_key(key), "now": now} for key in touched])
    for channel_id, message_id, _ in touched:
        tallies.recount(session, channel_id, message_id)


def _reaction_key(key: tuple[int, str, int]) -> dict[str, Any]:
    channel_id, message_id, rater_id = key
    return {"channel": channel_id, "message": message_id, "rater": rater_id}


# The hot path's statements, with bound parameters, compiled once per dialect (`bot.prepared`).
_REACTIONS = models.Base.metadata.tables["rating_reactions"]
_RATINGS = models.Base.metadata.tables["ratings"]
_ON_REACTION_KEY = (_REACTIONS.c.channel_id == bindparam("channel"), _REACTIONS.c.message_id == bindparam("message"),
                    _REACTIONS.c.rater_id == bindparam("rater"))
_ON_RATING_KEY = (_RATINGS.c.channel_id == bindparam("channel"), _RATINGS.c.message_id == bindparam("message"),
                  _RATINGS.c.rater_id == bindparam("rater"))


def _move_reaction(dialect: str) -> Insert:
    """Write a reaction's row, or move it on when this event is newer than what it reflects.

    An older, redelivered or reordered event changes nothing.
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
_HELD = models.Base.metadata.tables["held_replies"]
# A post claimed since `since` and not yet recorded: its message id is not known yet.
_IN_FLIGHT = Prepared(lambda dialect: select(_PROMPTS.c.id).where(
    _PROMPTS.c.channel_id == bindparam("channel"), _PROMPTS.c.status == "claimed",
    _PROMPTS.c.claimed_at >= bindparam("since", type_=UTCDateTime())).limit(1))
_HELD_THREAD = Prepared(lambda dialect: select(_HELD.c.thread_id).where(
    _HELD.c.channel_id == bindparam("channel"), _HELD.c.message_id == bindparam("message")).limit(1))
_HOLD = Prepared(lambda dialect: _HELD.insert().values(
    channel_id=bindparam("channel"), thread_id=bindparam("thread"), message_id=bindparam("message"),
    kind=bindparam("kind"), author_id=bindparam("author"), author_name=bindparam("name"),
    author_is_bot=bindparam("bot"), text=bindparam("text"), at=bindparam("at", type_=UTCDateTime()),
    held_at=bindparam("now", type_=UTCDateTime())))
# The replies held for a thread, and the channel's stale ones, taken out at once.
_SETTLE = delete(_HELD).where(
    _HELD.c.channel_id == bindparam("channel"),
    or_(_HELD.c.thread_id == bindparam("thread"), _HELD.c.held_at < bindparam("stale", type_=UTCDateTime())),
).returning(*_HELD.c)
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
