"""SQLAlchemy models: the database is the source of truth, and its constraints keep the rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite keeps the text SQLAlchemy's DATETIME writes ("2026-03-02 09:00:00.000000"). Made
        # here in one step it costs a third of `process_bind_param` followed by DATETIME's own
        # processor, and the answer and reaction path binds several datetimes per event.
        def process(value: datetime | None) -> str | None:
            utc = self.process_bind_param(value, dialect)
            return None if utc is None else utc.isoformat(" ", "microseconds")[:26]  # less the "+00:00"

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


def _id() -> Mapped[int]:
    return mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = _id()
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class Member(Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("workspace_id", "external_id"),)

    id: Mapped[int] = _id()
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Channel(Base):
    """A channel and its schedule: a local time, an IANA zone and a set of weekdays (bit 0 is Monday)."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("workspace_id", "external_id"),)

    id: Mapped[int] = _id()
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    track: Mapped[str] = mapped_column(String(64))
    post_time: Mapped[time] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64))
    weekdays: Mapped[int] = mapped_column(SmallInteger)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Track(Base):
    """A question-bank track as last synced: its title, categories (with drill probes) and pillars."""

    __tablename__ = "tracks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    categories: Mapped[list[Any]] = mapped_column(JSON)
    pillars: Mapped[list[Any]] = mapped_column(JSON)
    synced_at: Mapped[datetime]


class Question(Base):
    """A bank question; a question removed from the bank is retired, never deleted."""

    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("track", "slug"),)

    id: Mapped[int] = _id()
    track: Mapped[str] = mapped_column(String(64))
    slug: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    pillars: Mapped[list[str]] = mapped_column(JSON)
    difficulty: Mapped[int] = mapped_column(SmallInteger)
    kind: Mapped[str] = mapped_column(String(32))
    follow_ups: Mapped[list[str]] = mapped_column(JSON)
    rubric: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    retired_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Prompt(Base):
    """A question posted, or to be posted, to a channel on a local date.

    The (channel, local date) row is claimed before posting, so one date gets one post however
    many processes or retries race for it; `status` runs claimed -> posted (or skipped).
    """

    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("channel_id", "local_date"),
        UniqueConstraint("channel_id", "message_id"),
    )

    id: Mapped[int] = _id()
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    local_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"))
    marker: Mapped[str] = mapped_column(String(64), unique=True)
    claim_token: Mapped[str] = mapped_column(String(36))
    claimed_at: Mapped[datetime]
    message_id: Mapped[str | None] = mapped_column(String(64))
    posted_at: Mapped[datetime | None]


class Answer(Base):
    """A member's reply in a prompt's thread, keyed by its platform message.

    A deletion that arrives before its post leaves a row with `withdrawn_at` set and no prompt, so
    the late post cannot bring the answer back; an edit that arrives first without its author leaves
    a row with the newer text and no prompt, so the late post cannot bring the old text back.
    """

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_id"),
        Index(None, "prompt_id", "member_id"),
        # Covering, and only over answers that stand: a leaderboard reads its period's answers
        # and their tallies from the index alone, and so do a member's stats.
        Index("ix_answers_standing_by_time", "channel_id", "posted_at", "member_id", "rating_count", "rating_sum",
              sqlite_where=text("withdrawn_at IS NULL AND prompt_id IS NOT NULL"),
              postgresql_where=text("withdrawn_at IS NULL AND prompt_id IS NOT NULL")),
        Index("ix_answers_standing_by_member", "channel_id", "member_id", "prompt_id", "rating_count", "rating_sum",
              sqlite_where=text("withdrawn_at IS NULL AND prompt_id IS NOT NULL"),
              postgresql_where=text("withdrawn_at IS NULL AND prompt_id IS NOT NULL")),
    )

    id: Mapped[int] = _id()
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    prompt_id: Mapped[int | None] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    text: Mapped[str | None] = mapped_column(Text)
    posted_at: Mapped[datetime | None]
    text_changed_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    # The ratings that count on this answer (see bot.tallies), kept so tallies read one row an answer.
    rating_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rating_sum: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class HeldReply(Base):
    """A reply to a thread prepbot does not know yet, kept while its channel has a post in flight.

    A member can answer in the moment between the platform taking a daily post and prepbot
    recording its message id (longer if the poster crashed there and the post is reconciled
    later). Such a reply is held here; when the post is recorded, the replies in its thread are
    recorded as answers, and the rest are dropped once they are older than the lateness window.
    `kind` is `posted` or `edited`; the author is a member of the channel's workspace.
    """

    __tablename__ = "held_replies"
    __table_args__ = (Index(None, "channel_id", "thread_id"),)

    id: Mapped[int] = _id()
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    thread_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str | None] = mapped_column(String(64))
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    held_at: Mapped[datetime]


class RatingReaction(Base):
    """One rating emoji by one rater on one message, present or taken back, as of `changed_at`."""

    __tablename__ = "rating_reactions"
    __table_args__ = (UniqueConstraint("channel_id", "message_id", "rater_id", "score"),)

    id: Mapped[int] = _id()
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    rater_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(SmallInteger)
    present: Mapped[bool] = mapped_column(Boolean)
    added_at: Mapped[datetime | None]
    changed_at: Mapped[datetime]


class Rating(Base):
    """The rating in force for (message, rater): the most recently added reaction still present."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_id", "rater_id"),
        Index(None, "rater_id", "channel_id", "counted"),
    )

    id: Mapped[int] = _id()
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(64))
    rater_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    score: Mapped[int] = mapped_column(SmallInteger)
    rated_at: Mapped[datetime]
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Drill(Base):
    """A drill-down given to a member for a question: step N is follow-up N, then the category probes."""

    __tablename__ = "drills"
    __table_args__ = (UniqueConstraint("member_id", "question_id", "step"),)

    id: Mapped[int] = _id()
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"))
    step: Mapped[int] = mapped_column(Integer)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class InboxEvent(Base):
    """A platform event id already processed; a redelivery finds its row and changes nothing."""

    __tablename__ = "inbox_events"
    __table_args__ = (Index(None, "received_at"),)  # pruning reads the oldest first (`PrepBot.prune_inbox`)

    event_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime]


class Installation(Base):
    """A platform app installed into a workspace by OAuth: the bot token it was granted and by whom.

    `enterprise_id` is empty rather than NULL when there is none, so the unique key holds on every backend.
    """

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("platform", "enterprise_id", "workspace_external_id"),)

    id: Mapped[int] = _id()
    platform: Mapped[str] = mapped_column(String(16))
    workspace_external_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64), default="")
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    app_id: Mapped[str | None] = mapped_column(String(64))
    bot_token: Mapped[str] = mapped_column(Text)
    bot_id: Mapped[str | None] = mapped_column(String(64))
    bot_user_id: Mapped[str | None] = mapped_column(String(64))
    installer_user_id: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    installed_at: Mapped[datetime]


class OAuthState(Base):
    """An OAuth `state` handed out for an install, kept as a keyed digest and consumed once before it expires."""

    __tablename__ = "oauth_states"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
