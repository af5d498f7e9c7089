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
from sqlalchemy.orm import Session

from bot import answers, db, models, views
from bot.actions import PostPrivately, PostPrompt
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
        self._writes = db.transactions(sessions)
        self._reads = db.transactions(sessions, reads_only=True)

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
        """Make sure `channel` has its prompt for `local_date`: claim, send and record, or reconcile.

        Only the claim and the record write, each in a short transaction of its own; on SQLite a
        process's posts take turns for those, and read what they need (the question to choose, the
        message to send) alongside. Each step is sync work in one transaction (`db.transactions`:
        on SQLite, one hand-off to a worker thread for the whole of it).
        """
        now = self._clock()
        ref, existing, question_id = await self._reads.run(lambda session: _before_claim(session, channel, local_date))
        if existing is None and question_id is None:
            logger.warning("channel %s has no active questions in track %r", channel.id, channel.track)
            return PostResult(ref, local_date, Outcome.NO_QUESTION)
        async with self._writer:
            claim = await self._writes.run(lambda session: self._claim(session, channel.id, local_date, existing, question_id, now))
        prompt = claim.prompt
        if claim.token is None:
            outcome = Outcome.ALREADY_DONE if prompt.status != "claimed" else Outcome.IN_FLIGHT
            return PostResult(ref, local_date, outcome, prompt.id, prompt.message_id)
        token, marker, prompt_id = claim.token, prompt.marker, prompt.id
        message = await self._reads.run(lambda session: views.prompt_message(session, prompt))

        try:
            if claim.reconcile_since is not None:
                found = await self._chat.find_prompt(ref, marker, since=claim.reconcile_since)
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

    def _claim(self, session: Session, channel_id: int, local_date: date, existing: models.Prompt | None,
               question_id: int | None, now: datetime) -> _Claim:
        """Claim (channel, local date) for the question, or take a stale claim over.

        The claim's `token` is None when the date is someone else's: done already, or claimed by
        another process whose claim is still fresh.
        """
        if existing is not None:
            existing = session.get_one(models.Prompt, existing.id)  # as it is now, not as it was read before the turn
        else:
            inserted = session.scalar(insert_ignoring_conflicts(
                session, models.Prompt, channel_id=channel_id, local_date=local_date, status="claimed",
                question_id=question_id, marker=_marker(), claim_token=(token := self._token()), claimed_at=now,
            ).returning(models.Prompt))
            if inserted is not None:
                return _Claim(inserted, token)
            existing = _prompt_on(session, channel_id, local_date)  # another process claimed it first
            assert existing is not None
        if existing.status != "claimed" or now - existing.claimed_at < CLAIM_TIMEOUT:
            return _Claim(existing, None)
        taken = session.scalar(
            update(models.Prompt)
            .where(models.Prompt.id == existing.id, models.Prompt.claim_token == existing.claim_token,
                   models.Prompt.status == "claimed")
            .values(claim_token=(token := self._token()), claimed_at=now)
            .returning(models.Prompt.id)
            .execution_options(synchronize_session=False)
        )
        if taken is None:
            return _Claim(existing, None)  # another process took it over first
        return _Claim(existing, token, reconcile_since=existing.claimed_at - SEND_TIMEOUT)

    def _token(self) -> str:
        return f"{self._process}-{secrets.token_hex(8)}"

    async def _record(self, channel: ChannelRef, prompt_id: int, token: str, message_id: str) -> None:
        """Record the prompt's message, and the replies held for its thread while it was in flight."""
        now = self._clock()

        def record(session: Session) -> list[PostPrivately]:
            channel_id = session.scalar(
                update(models.Prompt)
                .where(models.Prompt.id == prompt_id, models.Prompt.claim_token == token, models.Prompt.status == "claimed")
                .values(status="posted", message_id=message_id, posted_at=now)
                .returning(models.Prompt.channel_id)
            )
            if channel_id is None:
                logger.warning("prompt %s was recorded by another process before this one", prompt_id)
                return []
            return answers.settle_held(session, channel, channel_id, message_id, now, now - self._lateness)

        async with self._writer:
            notes = await self._writes.run(record)
        for note in notes:
            await send_quietly(self._chat, note)


@dataclass(frozen=True, slots=True)
class _Claim:
    prompt: models.Prompt
    token: str | None  # ours to send and record, if not None
    reconcile_since: datetime | None = None  # a stale claim taken over: look for a landed post from then


def _before_claim(session: Session, channel: models.Channel, local_date: date) -> tuple[ChannelRef, models.Prompt | None, int | None]:
    """The channel's ref, its prompt for the date if one is claimed, and else the question to claim it for."""
    ref = channel_ref(session, channel)
    existing = _prompt_on(session, channel.id, local_date)
    return ref, existing, choose_question(session, channel, local_date) if existing is None else None


def _prompt_on(session: Session, channel_id: int, local_date: date) -> models.Prompt | None:
    return session.scalar(select(models.Prompt).where(
        models.Prompt.channel_id == channel_id, models.Prompt.local_date == local_date))


def _marker() -> str:
    # 20 characters: fits Discord's 25-character nonce and Slack's metadata alike.
    return "pb" + secrets.token_hex(9)


def choose_question(session: Session, channel: models.Channel, local_date: date) -> int | None:
    """The id of the question for (channel, local date), the same in every process for the same history.

    No question repeats until the track's active questions are all used; the previous prompt's
    category is avoided when another category is left.
    """
    # Ids and categories only: a track holds a hundred questions or more, each with its rubric and
    # follow-ups, and a fan-out chooses for every channel.
    active = session.execute(
        select(models.Question.id, models.Question.category)
        .where(models.Question.track == channel.track, models.Question.retired_at.is_(None))
        .order_by(models.Question.slug)
    ).all()
    if not active:
        return None
    history = session.execute(
        select(models.Prompt.question_id, models.Question.category)
        .join(models.Question, models.Question.id == models.Prompt.question_id)
        .where(models.Prompt.channel_id == channel.id, models.Prompt.local_date < local_date)
        .order_by(models.Prompt.local_date)
    ).all()
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
    return int(pool[int.from_bytes(seed[:8], "big") % len(pool)].id)
