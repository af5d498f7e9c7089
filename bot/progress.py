"""Tallies: answers, ratings, streaks, leaderboards and recaps, read straight from the database.

A rating counts only while its answer stands (not withdrawn), its rater is not the answer's author,
and neither the rater nor the author is a bot; these filters apply when reading, so events may
arrive in any order (a bot's edited reply may be recorded before the bot is known to be one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models

# Bayesian average: every member starts with PRIOR_WEIGHT imaginary ratings at the middle of the
# scale, so a single 5 cannot outrank a long run of 4.8s. (The channel's own mean is no good as
# the prior: in a generous channel it is itself near 5, and one 5 wins again.)
PRIOR_WEIGHT = 5
PRIOR_MEAN = 3.0

Rater = models.Member.__table__.alias("rater")
Author = models.Member.__table__.alias("author")


def counted_ratings() -> Select[tuple[int, int, int, int]]:
    """(answer id, author id, rater id, score) for every rating that counts."""
    return (
        select(models.Answer.id, models.Answer.member_id, models.Rating.rater_id, models.Rating.score)
        .join(models.Answer, and_(
            models.Answer.channel_id == models.Rating.channel_id,
            models.Answer.message_id == models.Rating.message_id,
        ))
        .join(Rater, Rater.c.id == models.Rating.rater_id)
        .join(Author, Author.c.id == models.Answer.member_id)
        .where(
            models.Answer.withdrawn_at.is_(None),
            models.Answer.prompt_id.is_not(None),
            models.Answer.member_id != models.Rating.rater_id,
            Rater.c.is_bot.is_(False),
            Author.c.is_bot.is_(False),
        )
    )


def live_answers() -> Select[tuple[models.Answer]]:
    """Answers that stand: posted in a prompt's thread by a member who is not a bot, and not withdrawn."""
    return select(models.Answer).join(Author, Author.c.id == models.Answer.member_id).where(
        models.Answer.withdrawn_at.is_(None), models.Answer.prompt_id.is_not(None), Author.c.is_bot.is_(False))


@dataclass(frozen=True, slots=True)
class Standing:
    member_external_id: str
    ratings: int
    average: float
    score: float
    answers: int


def bayesian(total: float, count: int) -> float:
    return (PRIOR_WEIGHT * PRIOR_MEAN + total) / (PRIOR_WEIGHT + count)


async def leaderboard(session: AsyncSession, channel_id: int, since: datetime | None) -> list[Standing]:
    """Members ranked by Bayesian average rating on answers posted since `since`; ties by ratings."""
    ratings = counted_ratings().where(models.Answer.channel_id == channel_id)
    answers = live_answers().where(models.Answer.channel_id == channel_id)
    if since is not None:
        ratings = ratings.where(models.Answer.posted_at >= since)
        answers = answers.where(models.Answer.posted_at >= since)
    rated = ratings.subquery()
    per_member = (await session.execute(
        select(rated.c.member_id, func.count(), func.sum(rated.c.score)).group_by(rated.c.member_id)
    )).all()
    answered = answers.subquery()
    answer_counts = {member: count for member, count in await session.execute(
        select(answered.c.member_id, func.count()).group_by(answered.c.member_id))}
    names = await external_ids(session, [member for member, _, _ in per_member])
    standings = [
        Standing(names[member], count, total / count, bayesian(total, count), answer_counts.get(member, 0))
        for member, count, total in per_member
    ]
    return sorted(standings, key=lambda s: (-s.score, -s.ratings, s.member_external_id))


async def external_ids(session: AsyncSession, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    rows = await session.execute(select(models.Member.id, models.Member.external_id).where(models.Member.id.in_(member_ids)))
    return {member: external for member, external in rows}


@dataclass(frozen=True, slots=True)
class Stats:
    answers: int
    ratings_received: int
    average_received: float | None
    ratings_given: int
    streak: int
    best_streak: int
    drills: int
    prompts: int


async def member_stats(session: AsyncSession, channel_id: int, member_id: int) -> Stats:
    answers = await session.scalar(select(func.count()).select_from(
        live_answers().where(models.Answer.channel_id == channel_id, models.Answer.member_id == member_id).subquery())) or 0
    received = (await session.execute(select(func.count(), func.avg(models.Rating.score)).select_from(models.Rating).join(
        models.Answer, and_(models.Answer.channel_id == models.Rating.channel_id, models.Answer.message_id == models.Rating.message_id),
    ).join(Rater, Rater.c.id == models.Rating.rater_id).where(
        models.Rating.channel_id == channel_id, models.Answer.member_id == member_id,
        models.Answer.withdrawn_at.is_(None), models.Rating.rater_id != member_id, Rater.c.is_bot.is_(False),
    ))).one()
    given = await session.scalar(select(func.count()).select_from(models.Rating).join(
        models.Answer, and_(models.Answer.channel_id == models.Rating.channel_id, models.Answer.message_id == models.Rating.message_id),
    ).join(Author, Author.c.id == models.Answer.member_id).where(
        models.Rating.channel_id == channel_id, models.Rating.rater_id == member_id,
        models.Answer.withdrawn_at.is_(None), models.Answer.prompt_id.is_not(None), models.Answer.member_id != member_id,
        Author.c.is_bot.is_(False),
    )) or 0
    drills = await session.scalar(select(func.count()).where(
        models.Drill.member_id == member_id, models.Drill.channel_id == channel_id)) or 0
    prompt_ids = (await session.scalars(select(models.Prompt.id).where(
        models.Prompt.channel_id == channel_id, models.Prompt.status == "posted",
    ).order_by(models.Prompt.local_date.desc()))).all()
    answered = set((await session.scalars(live_answers().with_only_columns(models.Answer.prompt_id).where(
        models.Answer.channel_id == channel_id, models.Answer.member_id == member_id))).all())
    streak, best = streaks(prompt_ids, answered)
    return Stats(answers, received[0], float(received[1]) if received[1] is not None else None, given, streak, best, drills, len(prompt_ids))


def streaks(prompts_newest_first: list[int], answered: set[int | None]) -> tuple[int, int]:
    """(current, best) runs of consecutive prompts answered; the newest prompt, still open, does not break a run."""
    open_prompt = 1 if prompts_newest_first and prompts_newest_first[0] not in answered else 0
    current = 0
    for prompt in prompts_newest_first[open_prompt:]:
        if prompt not in answered:
            break
        current += 1
    best = run = 0
    for prompt in prompts_newest_first:
        run = run + 1 if prompt in answered else 0
        best = max(best, run)
    return current, best


@dataclass(frozen=True, slots=True)
class Recap:
    answers: int
    members: int
    top_author: str | None
    top_average: float | None
    top_ratings: int


async def recap(session: AsyncSession, prompt_id: int) -> Recap:
    answered = live_answers().where(models.Answer.prompt_id == prompt_id).subquery()
    answers = (await session.execute(select(func.count(), func.count(func.distinct(answered.c.member_id))))).one()
    rated = counted_ratings().where(models.Answer.prompt_id == prompt_id).subquery()
    rows = (await session.execute(
        select(rated.c.id, rated.c.member_id, func.count(), func.sum(rated.c.score)).group_by(rated.c.id, rated.c.member_id)
    )).all()
    if not rows:
        return Recap(answers[0], answers[1], None, None, 0)
    best = max(rows, key=lambda r: (bayesian(r[3], r[2]), r[2], -r[0]))
    names = await external_ids(session, [best[1]])
    return Recap(answers[0], answers[1], names[best[1]], best[3] / best[2], best[2])
