"""Progress: answers, ratings, streaks, leaderboards and recaps, read from the database.

Ratings are read through each answer's tally (`bot.tallies`), which already applies the rules of
what counts, so a leaderboard reads one index entry per answer rather than every rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot import models

# Bayesian average: every member starts with PRIOR_WEIGHT imaginary ratings at the middle of the
# scale, so a single 5 cannot outrank a long run of 4.8s. (The channel's own mean is no good as
# the prior: in a generous channel it is itself near 5, and one 5 wins again.)
PRIOR_WEIGHT = 5
PRIOR_MEAN = 3.0

# Answers that stand: posted in a prompt's thread and not withdrawn (the covering indexes' condition).
STANDING = (models.Answer.withdrawn_at.is_(None), models.Answer.prompt_id.is_not(None))


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
    """Members ranked by Bayesian average rating on answers posted since `since`; ties by ratings.

    Reads each answer's tally (bot.tallies) through a covering index, not the ratings themselves.
    """
    query = (
        select(models.Answer.member_id, func.count(), func.sum(models.Answer.rating_count), func.sum(models.Answer.rating_sum))
        .where(models.Answer.channel_id == channel_id, *STANDING)
        .group_by(models.Answer.member_id)
    )
    if since is not None:
        query = query.where(models.Answer.posted_at >= since)
    per_member = [
        (member, answers, int(count), int(total))
        for member, answers, count, total in await session.execute(query) if count and member is not None
    ]
    names = await session.run_sync(external_ids, [member for member, *_ in per_member])
    standings = [
        Standing(names[member], count, total / count, bayesian(total, count), answers)
        for member, answers, count, total in per_member
    ]
    return sorted(standings, key=lambda s: (-s.score, -s.ratings, s.member_external_id))


def external_ids(session: Session, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    rows = session.execute(select(models.Member.id, models.Member.external_id).where(models.Member.id.in_(member_ids)))
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
    answered = (await session.execute(
        select(models.Answer.prompt_id, models.Answer.rating_count, models.Answer.rating_sum)
        .where(models.Answer.channel_id == channel_id, models.Answer.member_id == member_id, *STANDING)
    )).all()
    received = sum(count for _, count, _ in answered)
    average = sum(total for *_, total in answered) / received if received else None
    given = select(func.count()).select_from(models.Rating).where(
        models.Rating.rater_id == member_id, models.Rating.channel_id == channel_id, models.Rating.counted.is_(True))
    drills = select(func.count()).where(models.Drill.member_id == member_id, models.Drill.channel_id == channel_id)
    # The two counts and the channel's posted prompts, newest first, in one statement: each
    # statement costs a round trip, and a channel without prompts still gives one row (of counts).
    one_row = select(literal(1).label("one")).subquery()
    rows = (await session.execute(
        select(given.scalar_subquery(), drills.scalar_subquery(), models.Prompt.id)
        .select_from(one_row)
        .outerjoin(models.Prompt, and_(models.Prompt.channel_id == channel_id, models.Prompt.status == "posted"))
        .order_by(models.Prompt.local_date.desc())
    )).all()
    given_count, drill_count = rows[0][0] or 0, rows[0][1] or 0
    prompt_ids = [prompt for *_, prompt in rows if prompt is not None]
    streak, best = streaks(prompt_ids, {prompt for prompt, _, _ in answered})
    return Stats(len(answered), received, average, given_count, streak, best, drill_count, len(prompt_ids))


def streaks(prompts_newest_first: Sequence[int], answered: set[int | None]) -> tuple[int, int]:
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


def recap(session: Session, prompt_id: int) -> Recap:
    answered = session.execute(
        select(models.Answer.message_id, models.Answer.posted_at, models.Answer.member_id,
               models.Answer.rating_count, models.Answer.rating_sum)
        .join(models.Member, models.Member.id == models.Answer.member_id)
        .where(models.Answer.prompt_id == prompt_id, models.Member.is_bot.is_(False), *STANDING)
    ).all()
    members = len({row.member_id for row in answered})
    rated = [row for row in answered if row.rating_count]
    if not rated:
        return Recap(len(answered), members, None, None, 0)
    # Ties go to the earlier answer by the platform's clock, not by row id: rows are numbered in the
    # order events happened to arrive, which redelivery and reordering change.
    best = min(rated, key=lambda r: (-bayesian(r.rating_sum, r.rating_count), -r.rating_count, r.posted_at, r.message_id))
    assert best.member_id is not None
    names = external_ids(session, [best.member_id])
    return Recap(len(answered), members, names[best.member_id], best.rating_sum / best.rating_count, best.rating_count)
