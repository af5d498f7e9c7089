"""Drill-downs: each member works through a question's follow-ups in order, then its category's probes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import models, views
from bot.events import DrillRequested
from bot.messages import Message
from bot.store import find_channel, find_prompt, insert_ignoring_conflicts, latest_prompt, member_id

MAX_TOPIC_CHARS = 100


@dataclass(frozen=True, slots=True)
class DrillOutcome:
    message: Message
    public: bool


async def drill(session: AsyncSession, event: DrillRequested, default_track: str, now: datetime) -> DrillOutcome:
    """The member's next drill: in a prompt's thread, on that question; else on the topic or the latest question."""
    topic = " ".join(event.topic.split())
    if len(topic) > MAX_TOPIC_CHARS:
        return DrillOutcome(Message.text(
            f"That topic is {len(topic)} characters long; give a category or a question id (at most {MAX_TOPIC_CHARS})."), False)
    channel = await find_channel(session, event.channel)
    track = channel.track if channel is not None else default_track
    member = await session.run_sync(member_id, event.user, now)

    question: models.Question | None = None
    in_thread = False
    if event.thread is not None and channel is not None:
        prompt = await session.run_sync(find_prompt, channel.id, event.thread)
        if prompt is not None and prompt.question_id is not None:
            question, in_thread = await session.get_one(models.Question, prompt.question_id), True
    if question is None and topic:
        question = await session.scalar(select(models.Question).where(
            models.Question.slug == topic.lower(), models.Question.retired_at.is_(None)))
        if question is None:
            return await _practice(session, track, topic, member, now)
    if question is None and channel is not None:
        latest = await session.run_sync(latest_prompt, channel.id)
        if latest is not None and latest.question_id is not None:
            question = await session.get_one(models.Question, latest.question_id)
    if question is None:
        return await _practice(session, track, "", member, now)

    step, text = await _next_step(session, question, member, channel.id if channel else None, now)
    return DrillOutcome(views.drill_message(event.user.id, question, step, text, in_thread=in_thread), in_thread)


async def _next_step(session: AsyncSession, question: models.Question, member: int, channel_id: int | None, now: datetime) -> tuple[int, str]:
    probes = await _probes(session, question.track, question.category)
    while True:
        step = await session.scalar(select(func.count()).where(
            models.Drill.member_id == member, models.Drill.question_id == question.id)) or 0
        inserted = await session.scalar(insert_ignoring_conflicts(
            session, models.Drill, member_id=member, question_id=question.id, step=step,
            channel_id=channel_id, created_at=now).returning(models.Drill.id))
        if inserted is not None:
            break  # a concurrent drill took this step: take the next
    if step < len(question.follow_ups):
        return step, question.follow_ups[step]
    if not probes:
        return step, question.follow_ups[step % len(question.follow_ups)]
    return step, probes[(step - len(question.follow_ups)) % len(probes)]


async def _probes(session: AsyncSession, track_id: str, category_id: str) -> list[str]:
    track = await session.get(models.Track, track_id)
    for category in track.categories if track else []:
        if category["id"] == category_id:
            return list(category.get("probes", []))
    return []


async def _practice(session: AsyncSession, track_id: str, topic: str, member: int, now: datetime) -> DrillOutcome:
    """A practice question, privately: from the category the topic names, else any category."""
    track = await session.get(models.Track, track_id)
    if track is None:
        return DrillOutcome(Message.text(f"The track `{track_id}` has no questions loaded yet."), False)
    category = _match_category(track.categories, topic) if topic else None
    if topic and category is None:
        names = ", ".join(f"`{c['id']}`" for c in track.categories)
        return DrillOutcome(Message.text(
            f"No category or question id matches `{topic}`. Try a category ({names}) or a question id from a post."), False)
    query = select(models.Question).where(models.Question.track == track_id, models.Question.retired_at.is_(None))
    if category is not None:
        query = query.where(models.Question.category == category["id"])
    drilled = select(models.Drill.question_id).where(models.Drill.member_id == member)
    questions = (await session.scalars(query.order_by(models.Question.slug))).all()
    fresh = (await session.scalars(query.where(models.Question.id.not_in(drilled)).order_by(models.Question.slug))).all() or questions
    if not fresh:
        return DrillOutcome(Message.text(f"The track `{track_id}` has no active questions."), False)
    seed = hashlib.sha256(f"{member}:{now.isoformat()}:{topic}".encode()).digest()
    question = fresh[int.from_bytes(seed[:8], "big") % len(fresh)]
    name = category["name"] if category else await session.run_sync(views.category_name, track_id, question.category)
    return DrillOutcome(views.practice_message(question, name), False)


def _match_category(categories: list[dict[str, str]], topic: str) -> dict[str, str] | None:
    wanted = _fold(topic)
    for category in categories:
        if wanted in (_fold(category["id"]), _fold(category["name"])):
            return category
    matches = [c for c in categories if wanted and (wanted in _fold(c["name"]) or wanted in _fold(c["id"]))]
    return matches[0] if len(matches) == 1 else None


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
