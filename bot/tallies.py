"""Per-answer rating tallies, kept beside the ratings so that leaderboards and stats read few rows.

A rating counts while its answer stands (posted in a prompt's thread, not withdrawn), its rater is
not the answer's author, and neither the rater nor the author is a bot. Each rating row carries
whether it counts, and each answer the count and sum of the ratings that count. Both are
recomputed from rows, never adjusted by deltas, so a replayed or reordered event recomputes the
same values: a rating's mark when it is written (`counts`) and again for every rating on a message
whenever its answer or one of its members changes (`refresh`); the answer's tally whenever any of
them changes (`recount`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, Update, and_, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from bot import models
from bot.prepared import Prepared


def refresh(session: Session, channel_id: int, message_id: str) -> None:
    """Recompute which ratings on one message count, and that message's answer tally (two statements)."""
    _MARK_COUNTED.run(session, {"channel": channel_id, "message": message_id})
    recount(session, channel_id, message_id)


def recount(session: Session, channel_id: int, message_id: str) -> None:
    """Recompute one message's answer tally from ratings whose marks are current (one statement).

    A rating written with `counts(...)` for its own row is current, so a reaction needs only this.
    Inside `recounted_at_end`, the recount waits for the block's end.
    """
    waiting: set[tuple[int, str]] | None = session.info.get(_WAITING)
    if waiting is not None:
        waiting.add((channel_id, message_id))
    else:
        _RECOUNT_ANSWER.run(session, {"channel": channel_id, "message": message_id})


@contextmanager
def recounted_at_end(session: Session) -> Iterator[None]:
    """Recount each answer the block changes once, as it ends, instead of after each change.

    A batch of events rates the same answers over and over, and nothing in it reads a tally, so
    the tallies come out the same. Should the block fail, nothing is recounted: its transaction
    rolls back.
    """
    if _WAITING in session.info:
        raise RuntimeError("recounted_at_end does not nest")
    waiting: set[tuple[int, str]] = set()
    session.info[_WAITING] = waiting
    try:
        yield
    finally:
        del session.info[_WAITING]
    _RECOUNT_ANSWER.run_many(session, [{"channel": channel, "message": message} for channel, message in sorted(waiting)])


_WAITING = "prepbot.tallies.waiting"  # in `session.info`: the answers `recounted_at_end` will recount
_RATINGS = models.Base.metadata.tables["ratings"]
_ANSWERS = models.Base.metadata.tables["answers"]
_MEMBERS = models.Base.metadata.tables["members"]


def counts(channel_id: ColumnElement[int], message_id: ColumnElement[str], rater_id: ColumnElement[int]) -> ColumnElement[bool]:
    """Whether a rating by `rater_id` on message (`channel_id`, `message_id`) counts, by the rule above."""
    # A bot's reply may be recorded before anyone knows it is a bot (an edit names its author, not
    # what it is); it stays recorded, and the bot author is what keeps its ratings from counting.
    author = _MEMBERS.alias("author")
    standing_answer_by_someone_else = exists().where(
        _ANSWERS.c.channel_id == channel_id, _ANSWERS.c.message_id == message_id,
        _ANSWERS.c.prompt_id.is_not(None), _ANSWERS.c.withdrawn_at.is_(None), _ANSWERS.c.member_id != rater_id,
        ~exists().where(author.c.id == _ANSWERS.c.member_id, author.c.is_bot.is_(True)))
    rater_is_bot = exists().where(_MEMBERS.c.id == rater_id, _MEMBERS.c.is_bot.is_(True))
    return and_(standing_answer_by_someone_else, ~rater_is_bot)


def _mark_counted(dialect: str) -> Update:
    """Mark each rating on a message as counting or not."""
    return (
        update(_RATINGS)
        .where(_RATINGS.c.channel_id == bindparam("channel"), _RATINGS.c.message_id == bindparam("message"))
        .values(counted=counts(_RATINGS.c.channel_id, _RATINGS.c.message_id, _RATINGS.c.rater_id))
    )


def _recount_answer(dialect: str) -> Update:
    counted = (_RATINGS.c.channel_id == _ANSWERS.c.channel_id, _RATINGS.c.message_id == _ANSWERS.c.message_id,
               _RATINGS.c.counted.is_(True))
    return (
        update(_ANSWERS)
        .where(_ANSWERS.c.channel_id == bindparam("channel"), _ANSWERS.c.message_id == bindparam("message"))
        .values(
            rating_count=select(func.count()).where(*counted).scalar_subquery(),
            rating_sum=select(func.coalesce(func.sum(_RATINGS.c.score), 0)).where(*counted).scalar_subquery(),
        )
    )


_MARK_COUNTED = Prepared(_mark_counted)
_RECOUNT_ANSWER = Prepared(_recount_answer)


def refresh_rated_by(session: Session, rater_id: int) -> None:
    """Recompute every message a member rated, e.g. once they turn out to be a bot."""
    rated = session.execute(
        select(models.Rating.channel_id, models.Rating.message_id).where(models.Rating.rater_id == rater_id).distinct()
    ).all()
    for channel_id, message_id in rated:
        refresh(session, channel_id, message_id)
