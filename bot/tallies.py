"""Per-answer rating tallies, kept beside the ratings so that leaderboards and stats read few rows.

A rating counts while its answer stands (posted in a prompt's thread, not withdrawn), its rater is
not the answer's author, and its rater is not a bot. Each rating row carries whether it counts,
and each answer the count and sum of the ratings that count. Both are recomputed from the rows
for one message whenever anything about that message changes, never adjusted by deltas, so a
replayed or reordered event recomputes the same values.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models


async def refresh(session: AsyncSession, channel_id: int, message_id: str) -> None:
    """Recompute which ratings on one message count, and that message's answer tally."""
    answer = (await session.execute(
        select(models.Answer.id, models.Answer.member_id, models.Answer.prompt_id, models.Answer.withdrawn_at)
        .where(models.Answer.channel_id == channel_id, models.Answer.message_id == message_id)
    )).first()
    standing = answer is not None and answer.prompt_id is not None and answer.withdrawn_at is None
    rater_is_bot = exists().where(models.Member.id == models.Rating.rater_id, models.Member.is_bot.is_(True))
    counts = and_(models.Rating.rater_id != answer.member_id, ~rater_is_bot) if standing and answer is not None else false()
    on_message = (models.Rating.channel_id == channel_id, models.Rating.message_id == message_id)
    await session.execute(
        update(models.Rating).where(*on_message).values(counted=counts).execution_options(synchronize_session=False))
    if answer is None:
        return
    count, total = (await session.execute(
        select(func.count(), func.coalesce(func.sum(models.Rating.score), 0))
        .where(*on_message, models.Rating.counted.is_(True))
    )).one()
    await session.execute(
        update(models.Answer).where(models.Answer.id == answer.id).values(rating_count=count, rating_sum=total)
        .execution_options(synchronize_session="fetch"))


async def refresh_rated_by(session: AsyncSession, rater_id: int) -> None:
    """Recompute every message a member rated, e.g. once they turn out to be a bot."""
    rated = (await session.execute(
        select(models.Rating.channel_id, models.Rating.message_id).where(models.Rating.rater_id == rater_id).distinct()
    )).all()
    for channel_id, message_id in rated:
        await refresh(session, channel_id, message_id)
