"""The core: takes neutral events in, applies the product's rules, and acts through the `ChatPort`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, bindparam, delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from bot import answers, commands, db, drills, models, tallies, views
from bot.actions import PostPrivately, Reply
from bot.batching import GroupCommitter, retrying
from bot.events import (
    AnswerDeleted,
    AnswerEdited,
    AnswerPosted,
    CommandInvoked,
    DrillRequested,
    Event,
    ReactionAdded,
    ReactionRemoved,
)
from bot.messages import Message
from bot.models import UTCDateTime
from bot.ports import ChatPort, send_quietly
from bot.posting import Outcome, Poster, PostResult
from bot.prepared import PreparedRows
from bot.refs import ChannelRef, MessageRef, UserRef
from bot.store import dialect_insert, find_channel_id, latest_prompt, member_id

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MemberEvent = AnswerPosted | AnswerEdited | AnswerDeleted | ReactionAdded | ReactionRemoved

# PostgreSQL rolls back one of two transactions that deadlock (e.g. a drill and an answer each
# creating the same new member); the event's transaction holds no outside effect, so it runs again.
TRANSACTION_ATTEMPTS = 3
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure
# Platforms redeliver within minutes (Slack's last retry comes about five minutes after the first
# try); a week of delivery ids is ample, and the inbox stops growing for ever.
INBOX_RETENTION = timedelta(days=7)
PRUNE_CHUNK = 5_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def retryable(error: BaseException) -> bool:
    """Whether the database rolled a transaction back only to break a deadlock or a serialization conflict."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def without_nul(event: Event) -> Event:
    """The event with NUL characters dropped from what members typed.

    PostgreSQL refuses NUL in text, even as a query parameter, and no chat message means one;
    dropping it here keeps both backends alike instead of failing the event on one of them.
    """
    match event:
        case AnswerPosted(text=str(text)) | AnswerEdited(text=str(text)) if "\x00" in text:
            return replace(event, text=text.replace("\x00", ""))
        case CommandInvoked(text=text) if "\x00" in text:
            return replace(event, text=text.replace("\x00", ""))
        case DrillRequested(topic=topic) if "\x00" in topic:
            return replace(event, topic=topic.replace("\x00", ""))
    return event


def _record_deliveries(dialect: str, rows: int) -> Insert:
    """Insert `rows` event ids into the inbox at once; those already there (redeliveries) return no row."""
    inbox = models.Base.metadata.tables["inbox_events"]
    return (
        dialect_insert(dialect, models.InboxEvent)
        .values([{"event_id": bindparam(f"event_id_{i}"), "kind": bindparam(f"kind_{i}"),
                  "received_at": bindparam(f"at_{i}", type_=UTCDateTime())} for i in range(rows)])
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )


_RECORD_DELIVERIES = PreparedRows(_record_deliveries)


class PrepBot:
    """The application service every adapter talks to.

    `handle` applies one event exactly once (its id is written to the inbox in the same
    transaction as its effects) and returns the reply for commands and drills; `tick` posts
    whatever is due.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        chat: ChatPort,
        *,
        organizers: frozenset[str] = frozenset(),
        lateness: timedelta = timedelta(hours=3),
        default_track: str = "ops-manager-trust-safety",
        clock: Clock = utc_now,
    ) -> None:
        self._sessions = sessions
        self._chat = chat
        self._organizers = organizers
        self._default_track = default_track
        self._clock = clock
        self._lateness = lateness
        self.poster = Poster(sessions, chat, clock, lateness)
        self._transactions = db.transactions(sessions)
        self._writer: GroupCommitter[MemberEvent, PostPrivately | None] = GroupCommitter(
            self._transactions, self._apply_member_events, retryable=retryable, attempts=TRANSACTION_ATTEMPTS)

    async def tick(self) -> list[PostResult]:
        """Post every prompt that is due now."""
        return await self.poster.tick()

    async def handle(self, event: Event) -> Reply | None:
        """Apply one event exactly once and return the reply for a command or drill.

        A redelivered event id changes nothing and gets no reply. Answers and reactions, the
        high-volume events, are committed in groups (`bot.batching`); either way the call returns
        only once the event is durable.
        """
        event = without_nul(event)
        match event:
            case CommandInvoked() | DrillRequested():
                reply = await retrying(
                    lambda: self._interactive(event), retryable=retryable, attempts=TRANSACTION_ATTEMPTS)
                if isinstance(reply, commands.PostNow):
                    # Posting talks to the platform, which must not happen inside the command's transaction.
                    return Reply(await self._post_now(reply.channel_id))
                return reply
            case _:
                note = await self._writer.submit(event)
                if note is not None:
                    await send_quietly(self._chat, note)
                return None

    async def _interactive(self, event: CommandInvoked | DrillRequested) -> Reply | commands.PostNow | None:
        """Apply a command or a drill in a transaction of its own."""
        now = self._clock()
        async with self._sessions() as session, session.begin():
            if not await session.run_sync(_first_delivery, event, now):
                logger.debug("ignoring redelivered event %s", event.event_id)
                return None
            if isinstance(event, DrillRequested):
                drilled = await drills.drill(session, event, self._default_track, now)
                return Reply(drilled.message, private=not drilled.public)
            result = await commands.run(commands.Context(session, event, now, self._is_organizer(event), self._default_track))
            return result if isinstance(result, commands.PostNow) else Reply(result)

    def _apply_member_events(self, session: Session, events: Sequence[MemberEvent]) -> list[PostPrivately | None]:
        """Record answers and reactions in one transaction; return, for each, a private note for its author, if any.

        The notes are sent after the commit. The batch's event ids go to the inbox in one statement,
        its reactions are applied together after its other events (`answers.record_reactions`), and
        each answer it rated is recounted once, at the end.
        """
        now = self._clock()
        fresh = _first_deliveries(session, events, now)
        notes: list[PostPrivately | None] = []
        reactions: list[ReactionAdded | ReactionRemoved] = []
        with tallies.recounted_at_end(session):
            for event in events:
                if event.event_id not in fresh:
                    logger.debug("ignoring redelivered event %s", event.event_id)
                    notes.append(None)
                    continue
                fresh.remove(event.event_id)  # an id twice in one batch is applied once
                if isinstance(event, ReactionAdded | ReactionRemoved):
                    reactions.append(event)  # a rating is read from the rows, not the events' order: these go last
                    notes.append(None)
                else:
                    notes.append(self._apply_answer_event(session, event, now))
            answers.record_reactions(session, reactions, now)
        return notes

    def _apply_answer_event(self, session: Session, event: AnswerPosted | AnswerEdited | AnswerDeleted, now: datetime) -> PostPrivately | None:
        if isinstance(event, AnswerDeleted):
            answers.withdraw_answer(session, event)
            return None
        outcome = answers.record_answer(session, event, now, hold_since=now - self._lateness)
        return answers.note_for_author(session, event, outcome)

    async def prune_inbox(self, *, keep: timedelta = INBOX_RETENTION, chunk: int = PRUNE_CHUNK) -> int:
        """Forget the delivery ids received more than `keep` ago; return how many went.

        An event that did come back later still changes nothing: answers and reactions are also
        keyed by their message and stamped with their time (`bot.answers`). The ids go oldest
        first, `chunk` to a transaction, so that events keep being applied in between.
        """
        cutoff = self._clock() - keep
        removed = 0
        while True:
            gone = await self._transactions.run(lambda session: _prune_inbox(session, cutoff, chunk))
            removed += gone
            if gone < chunk:
                return removed

    async def note_member(self, user: UserRef, *, is_bot: bool) -> None:
        """Record what an adapter learned about a member later (e.g. that a rater is a bot).

        Bot ratings are filtered when tallies are read, so learning this after the fact is enough.
        """
        async with self._sessions() as session, session.begin():
            await session.run_sync(member_id, user, self._clock(), is_bot=is_bot)

    async def is_set_up(self, channel: ChannelRef) -> bool:
        """Whether the channel has a practice schedule."""
        async with self._sessions() as session:
            return await session.run_sync(find_channel_id, channel) is not None

    async def current_prompt(self, channel: ChannelRef) -> tuple[MessageRef, Message] | None:
        """The channel's latest posted prompt and how it reads, e.g. to show it again after a restart."""
        async with self._sessions() as session:
            channel_id = await session.run_sync(find_channel_id, channel)
            prompt = await session.run_sync(latest_prompt, channel_id) if channel_id is not None else None
            if prompt is None or prompt.message_id is None:
                return None
            return MessageRef(channel, prompt.message_id), await session.run_sync(views.prompt_message, prompt)

    def _is_organizer(self, event: CommandInvoked) -> bool:
        return event.user_is_admin or event.user.id in self._organizers

    async def _post_now(self, channel_id: int) -> Message:
        now = self._clock()
        async with self._sessions() as session:
            channel = await session.get_one(models.Channel, channel_id)
        today = now.astimezone(ZoneInfo(channel.timezone)).date()
        result = await self.poster.post(channel, today)
        match result.outcome:
            case Outcome.POSTED | Outcome.RECONCILED:
                return Message.text(f"Posted today's question ({today:%a %d %b}).")
            case Outcome.ALREADY_DONE:
                return Message.text(f"Today's question ({today:%a %d %b}) is already up or was skipped; the next one follows the schedule.")
            case Outcome.IN_FLIGHT:
                return Message.text("Today's question is being posted right now.")
            case Outcome.NO_QUESTION:
                return Message.text(f"The track `{channel.track}` has no active questions. Check the question bank.")
            case _:
                return Message.text("Posting failed; it will be retried automatically. Check the bot's logs for why.")


def _prune_inbox(session: Session, before: datetime, chunk: int) -> int:
    inbox = models.Base.metadata.tables["inbox_events"]
    oldest = select(inbox.c.event_id).where(inbox.c.received_at < before).order_by(inbox.c.received_at).limit(chunk)
    result = session.execute(delete(inbox).where(inbox.c.event_id.in_(oldest)))
    assert isinstance(result, CursorResult)  # a DELETE's result, which counts its rows
    return result.rowcount


def _first_delivery(session: Session, event: Event, now: datetime) -> bool:
    """Write the event's id to the inbox; False for a redelivery, whose id is there already."""
    return bool(_first_deliveries(session, [event], now))


def _first_deliveries(session: Session, events: Sequence[Event], now: datetime) -> set[str]:
    """Write the events' ids to the inbox in one statement; return those that were not there yet.

    A redelivery's id is there already. One id may also come twice in `events`, a redelivery
    arriving while its first delivery waits in the batch: it is returned once.
    """
    written = _RECORD_DELIVERIES.rows(
        session, [{"event_id": event.event_id, "kind": type(event).__name__, "at": now} for event in events])
    return {event_id for (event_id,) in written}
