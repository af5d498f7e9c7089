"""Daily posts: choose the question, claim (channel, local date), post, record; reconcile after crashes.

The claim is a row under a unique (channel, local date) constraint written *before* the send, so
however many processes, ticks or retries race for a date, one of them owns it. The owner records
the platform message after the send. A claim left unrecorded (a crash mid-send, a lost response)
goes stale after `CLAIM_TIMEOUT`; whoever takes it over first looks for the prompt's marker on the
platform and only sends again if the marker is not there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import answers, db, models, views
from bot.actions import PostPrompt
from bot.ports import ChatPort, send_quietly
from bot.refs import ChannelRef
from bot.schedule import latest_due
from bot.store import channel_ref, insert_ignoring_conflicts

logger = logging.getLogger(__name__)

SEND_TIMEOUT = timedelta(seconds=30)
MAX_CONCURRENT_POSTS = 50
# Longer than a send may take, so a live sender always finishes or gives up before a takeover.
CLAIM_TIMEOUT = timedelta(seconds=45)


class Outcome(StrEnum):
    POSTED = "posted"
    RECONCILED = "reconciled"  # found already on the platform after an unknown outcome
    ALREADY_DONE = "already-done"
    IN_FLIGHT = "in-flight"  # another process holds a fresh claim
    NO_QUESTION = "no-question"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PostResult:
    channel: ChannelRef
    local_date: date
    outcome: Outcome
    prompt_id: int | None = None
    message_id: str | None = None


class Poster:
    """Posts due prompts exactly once per channel and local date."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], chat: ChatPort, clock: Callable[[], datetime], lateness: timedelta) -> None:
        self._sessions = sessions
        self._chat = chat
        self._clock = clock
        self._lateness = lateness
        self._process = uuid.uuid4().hex[:8]
        self._writer = db.one_writer_at_a_time(sessions)  # many posts at once: their claims and records take turns

    async def tick(self) -> list[PostResult]:
        """Post every channel whose latest scheduled post is due and not over the lateness window."""
        now = self._clock()
        async with self._sessions() as session:
            channels = (await session.scalars(select(models.Channel).where(models.Channel.paused.is_(False)))).all()
        due = [
            (channel, found[0])
            for channel in channels
            if (found := latest_due(now, channel.post_time, ZoneInfo(channel.timezone), channel.weekdays, self._lateness))
        ]
        if not due:
            return []
        # Bounded: a thousand channels due at once would otherwise hold a thousand sessions, messages
        # and queued sends at the same time, and sends waiting on the platform's pacing time out.
        slots = asyncio.Semaphore(MAX_CONCURRENT_POSTS)

        async def post_in_turn(channel: models.Channel, local_date: date) -> PostResult:
            async with slots:
                return await self.post(channel, local_date)

        results = await asyncio.gather(*(post_in_turn(channel, local_date) for channel, local_date in due))
        return [result for result in results if result.outcome is not Outcome.ALREADY_DONE]

    async def post(self, channel: models.Channel, local_date: date) -> PostResult:
        """Make sure `channel` has its prompt for `local_date`: claim, send and record, or reconcile."""
        now = self._clock()
        async with self._writer, self._sessions() as session, session.begin():
            ref = await channel_ref(session, channel)
            prompt, fresh = await self._claim(session, channel, local_date, now)
            if prompt is None:
                return PostResult(ref, local_date, Outcome.NO_QUESTION)
            token, reconcile_since = prompt.claim_token, None
            if not fresh:
                if prompt.status != "claimed":
                    return PostResult(ref, local_date, Outcome.ALREADY_DONE, prompt.id, prompt.message_id)
                taken = await self._take_over(session, prompt, now) if now - prompt.claimed_at >= CLAIM_TIMEOUT else None
                if taken is None:
                    return PostResult(ref, local_date, Outcome.IN_FLIGHT, prompt.id)
                token, reconcile_since = taken, prompt.claimed_at - SEND_TIMEOUT
            message = await views.prompt_message(session, prompt)
            marker, prompt_id = prompt.marker, prompt.id

        try:
            if reconcile_since is not None:
                found = await self._chat.find_prompt(ref, marker, since=reconcile_since)
                if found is not None:
                    await self._record(ref, prompt_id, token, found.id)
                    logger.info("reconciled prompt %s in %s: found %s already posted", prompt_id, ref, found.id)
                    return PostResult(ref, local_date, Outcome.RECONCILED, prompt_id, found.id)
            posted = await asyncio.wait_for(
                self._chat.perform(PostPrompt(ref, message, marker)), SEND_TIMEOUT.total_seconds())
        except Exception:
            # The outcome is unknown; the claim goes stale and the next taker reconciles by marker.
            logger.exception("posting prompt %s to %s failed; it will be reconciled and retried", prompt_id, ref)
            return PostResult(ref, local_date, Outcome.FAILED, prompt_id)
        assert posted is not None
        # A crash from here until the record leaves a post that landed unrecorded: the next taker finds it by marker.
        logger.debug("prompt %s landed in %s as %s; recording it", prompt_id, ref, posted.id)
        await self._record(ref, prompt_id, token, posted.id)
        logger.info("posted prompt %s to %s for %s as %s", prompt_id, ref, local_date, posted.id)
        return PostResult(ref, local_date, Outcome.POSTED, prompt_id, posted.id)

    async def _claim(self, session: AsyncSession, channel: models.Channel, local_date: date, now: datetime) -> tuple[models.Prompt | None, bool]:
        existing = await _prompt_on(session, channel.id, local_date)
        if existing is not None:
            return existing, False
        question = await choose_question(session, channel, local_date)
        if question is None:
            logger.warning("channel %s has no active questions in track %r", channel.id, channel.track)
            return None, False
        token = self._token()
        inserted = await session.scalar(insert_ignoring_conflicts(
            session, models.Prompt, channel_id=channel.id, local_date=local_date, status="claimed",
            question_id=question.id, marker=_marker(), claim_token=token, claimed_at=now,
        ).returning(models.Prompt))
        if inserted is not None:
            return inserted, True
        prompt = await _prompt_on(session, channel.id, local_date)  # another process claimed it first
        assert prompt is not None
        return prompt, False

    async def _take_over(self, session: AsyncSession, prompt: models.Prompt, now: datetime) -> str | None:
        """Take a stale claim over, unless another process got there first; return the new token."""
        token = self._token()
        taken = await session.scalar(
            update(models.Prompt)
            .where(models.Prompt.id == prompt.id, models.Prompt.claim_token == prompt.claim_token, models.Prompt.status == "claimed")
            .values(claim_token=token, claimed_at=now)
            .returning(models.Prompt.id)
            .execution_options(synchronize_session=False)
        )
        return token if taken is not None else None

    def _token(self) -> str:
        return f"{self._process}-{secrets.token_hex(8)}"

    async def _record(self, channel: ChannelRef, prompt_id: int, token: str, message_id: str) -> None:
        """Record the prompt's message, and the replies held for its thread while it was in flight."""
        now = self._clock()
        async with self._writer, self._sessions() as session, session.begin():
            channel_id = await session.scalar(
                update(models.Prompt)
                .where(models.Prompt.id == prompt_id, models.Prompt.claim_token == token, models.Prompt.status == "claimed")
                .values(status="posted", message_id=message_id, posted_at=now)
                .returning(models.Prompt.channel_id)
            )
            if channel_id is None:
                logger.warning("prompt %s was recorded by another process before this one", prompt_id)
                return
            notes = await session.run_sync(answers.settle_held, channel, channel_id, message_id, now, now - self._lateness)
        for note in notes:
            await send_quietly(self._chat, note)


async def _prompt_on(session: AsyncSession, channel_id: int, local_date: date) -> models.Prompt | None:
    return await session.scalar(select(models.Prompt).where(
        models.Prompt.channel_id == channel_id, models.Prompt.local_date == local_date))


def _marker() -> str:
    # 20 characters: fits Discord's 25-character nonce and Slack's metadata alike.
    return "pb" + secrets.token_hex(9)


async def choose_question(session: AsyncSession, channel: models.Channel, local_date: date) -> models.Question | None:
    """The question for (channel, local date), the same in every process for the same history.

    No question repeats until the track's active questions are all used; the previous prompt's
    category is avoided when another category is left.
    """
    # Ids and categories only: a track holds a hundred questions or more, each with its rubric and
    # follow-ups, and a fan-out chooses for every channel.
    active = (await session.execute(
        select(models.Question.id, models.Question.category)
        .where(models.Question.track == channel.track, models.Question.retired_at.is_(None))
        .order_by(models.Question.slug)
    )).all()
    if not active:
        return None
    history = (await session.execute(
        select(models.Prompt.question_id, models.Question.category)
        .join(models.Question, models.Question.id == models.Prompt.question_id)
        .where(models.Prompt.channel_id == channel.id, models.Prompt.local_date < local_date)
        .order_by(models.Prompt.local_date)
    )).all()
    active_ids = {q.id for q in active}
    used: set[int] = set()
    for question_id, _ in history:
        if question_id is not None and question_id in active_ids:
            used.add(question_id)
            if used == active_ids:
                used = set()  # the track was exhausted: a new cycle starts
    fresh = [q for q in active if q.id not in used] or list(active)
    previous_category = history[-1].category if history else None
    pool = [q for q in fresh if q.category != previous_category] or fresh
    seed = hashlib.sha256(f"{channel.id}:{local_date.isoformat()}".encode()).digest()
    return await session.get_one(models.Question, pool[int.from_bytes(seed[:8], "big") % len(pool)].id)
