"""Per-answer rating tallies, kept beside the ratings so that leaderboards and stats read few rows.

A rating counts while its answer stands (posted in a prompt's thread, not withdrawn), its rater is
not the answer's author, and its rater is not a bot. Each rating row carries whether it counts,
and each answer the count and sum of the ratings that count. Both are recomputed from the rows
for one message whenever anything about that message changes, never adjusted by deltas, so a
replayed or reordered event recomputes the same values.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models


async def refresh(session: AsyncSession, channel_id: int, message_id: str) -> None:
    """Recompute which ratings on one message count, and that message's answer tally (two statements)."""
    rating, answer, rater = models.Rating, models.Answer, models.Member
    standing_answer_by_someone_else = exists().where(
        answer.channel_id == rating.channel_id, answer.message_id == rating.message_id,
        answer.prompt_id.is_not(None), answer.withdrawn_at.is_(None), answer.member_id != rating.rater_id)
    rater_is_bot = exists().where(rater.id == rating.rater_id, rater.is_bot.is_(True))
    await session.execute(
        update(rating)
        .where(rating.channel_id == channel_id, rating.message_id == message_id)
        .values(counted=and_(standing_answer_by_someone_else, ~rater_is_bot))
        .execution_options(synchronize_session=False))
    counted = (rating.channel_id == answer.channel_id, rating.message_id == answer.message_id, rating.counted.is_(True))
    await session.execute(
        update(answer)
        .where(answer.channel_id == channel_id, answer.message_id == message_id)
        .values(
            rating_count=select(func.count()).where(*counted).scalar_subquery(),
            rating_sum=select(func.coalesce(func.sum(rating.score), 0)).where(*counted).scalar_subquery(),
        )
        .execution_options(synchronize_session=False))


async def refresh_rated_by(session: AsyncSession, rater_id: int) -> None:
    """Recompute every message a member rated, e.g. once they turn out to be a bot."""
    rated = (await session.execute(
        select(models.Rating.channel_id, models.Rating.message_id).where(models.Rating.rater_id == rater_id).distinct()
    )).all()
    for channel_id, message_id in rated:
        await refresh(session, channel_id, message_id)
