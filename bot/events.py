"""Inbound events: what happened on a platform, translated by an adapter into the core's terms.

Every event carries the platform's own delivery id (`event_id`, used for deduplication) and the
time the platform says it happened (`at`, timezone-aware), which orders redelivered events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.refs import ChannelRef, MessageRef, UserRef


@dataclass(frozen=True, slots=True)
class AnswerPosted:
    """A reply appeared in a thread; the core decides whether the thread is a prompt's."""

    event_id: str
    at: datetime
    message: MessageRef
    thread: MessageRef
    author: UserRef
    text: str | None
    author_is_bot: bool = False


@dataclass(frozen=True, slots=True)
class AnswerEdited:
    """A reply's text changed.

    Adapters pass the thread and author when the platform says them, so an edit that shortens an
    answer once refused as too long can still be recorded.
    """

    event_id: str
    at: datetime
    message: MessageRef
    text: str | None
    thread: MessageRef | None = None
    author: UserRef | None = None


@dataclass(frozen=True, slots=True)
class AnswerDeleted:
    """A reply was deleted; its answer and ratings leave every tally."""

    event_id: str
    at: datetime
    message: MessageRef


@dataclass(frozen=True, slots=True)
class ReactionAdded:
    """A member reacted to a message; `emoji` is the adapter's normalised name (`one` … `five`)."""

    event_id: str
    at: datetime
    message: MessageRef
    reactor: UserRef
    emoji: str
    reactor_is_bot: bool = False


@dataclass(frozen=True, slots=True)
class ReactionRemoved:
    """A member took a reaction back."""

    event_id: str
    at: datetime
    message: MessageRef
    reactor: UserRef
    emoji: str
    reactor_is_bot: bool = False


@dataclass(frozen=True, slots=True)
class CommandInvoked:
    """`/prep <text>`; `user_is_admin` carries the platform's own admin right, checked by the adapter."""

    event_id: str
    at: datetime
    channel: ChannelRef
    user: UserRef
    text: str
    user_is_admin: bool = False
    thread: MessageRef | None = None


@dataclass(frozen=True, slots=True)
class DrillRequested:
    """`/drill [topic]`, a mention asking for a drill, or the "Drill me on this" shortcut.

    `thread` is the thread it was asked in, if any: inside a prompt's thread the member gets the
    next follow-up for that prompt's question.
    """

    event_id: str
    at: datetime
    channel: ChannelRef
    user: UserRef
    topic: str = ""
    thread: MessageRef | None = None


Event = (
    AnswerPosted
    | AnswerEdited
    | AnswerDeleted
    | ReactionAdded
    | ReactionRemoved
    | CommandInvoked
    | DrillRequested
)
