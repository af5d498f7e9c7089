"""Pure translation between Discord's payloads and prepbot's vocabulary: events in, embeds out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import discord

from bot.events import (
    AnswerDeleted,
    AnswerEdited,
    AnswerPosted,
    CommandInvoked,
    DrillRequested,
    ReactionAdded,
    ReactionRemoved,
)
from bot.messages import Bullets, Context, Divider, Fields, Header, Message, Text
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef

PLATFORM = "discord"
VARIATION_SELECTOR = "\ufe0f"
# Keyed without the emoji variation selector: clients send 1️⃣ both with and without it.
RATING_KEYCAPS: Mapping[str, str] = {
    f"{digit}\u20e3": name for digit, name in zip("12345", ("one", "two", "three", "four", "five"), strict=True)
}
ANSWER_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
MARKER_PREFIX = "prepbot:"
THREAD_NAME_CHARS = 100
EMBED_TITLE_CHARS = 256
EMBED_DESCRIPTION_CHARS = 4096
EMBED_FIELD_NAME_CHARS = 256
EMBED_FIELD_VALUE_CHARS = 1024
EMBED_FOOTER_CHARS = 2048
EMBED_MAX_FIELDS = 25
EMBED_TOTAL_CHARS = 6000
EMBED_COLOUR = 0x5865F2
MESSAGE_CONTENT_NOTE = (
    "This server's prepbot runs without Discord's Message Content intent: it records who answered and when, "
    "but not the words. An operator can enable the intent (Developer Portal → Bot → Message Content Intent) "
    "and set DISCORD_MESSAGE_CONTENT=true to keep answer text."
)
ORGANIZER_NOTE = "On Discord, organizers are members with the Manage Server permission."


@dataclass(frozen=True, slots=True)
class Place:
    """Where something happened: the guild, the channel the core knows, and the thread if it was in one."""

    guild_id: int
    channel_id: int
    thread_id: int | None = None

    @property
    def workspace(self) -> WorkspaceRef:
        return WorkspaceRef(PLATFORM, str(self.guild_id))

    @property
    def channel(self) -> ChannelRef:
        return ChannelRef(self.workspace, str(self.channel_id))

    @property
    def thread(self) -> MessageRef | None:
        # A prompt's thread is started on the prompt message, so the thread's id is the prompt's id.
        return None if self.thread_id is None else MessageRef(self.channel, str(self.thread_id))

    def message(self, message_id: int) -> MessageRef:
        return MessageRef(self.channel, str(message_id))

    def user(self, user_id: int, name: str | None = None) -> UserRef:
        return UserRef(self.workspace, str(user_id), name)


def snowflake_time(snowflake: int) -> datetime:
    """The aware UTC time encoded in a Discord id."""
    return discord.utils.snowflake_time(snowflake)


def rating_name(emoji: discord.PartialEmoji) -> str | None:
    """`one` … `five` for the keycap emoji 1️⃣ … 5️⃣; `None` for any other emoji."""
    if emoji.id is not None or emoji.name is None:
        return None
    return RATING_KEYCAPS.get(emoji.name.replace(VARIATION_SELECTOR, ""))


def answer_posted(message: discord.Message, place: Place, *, with_text: bool) -> AnswerPosted | None:
    """A member's message in a thread, or `None` for what is not an answer (system messages, no thread)."""
    if place.thread is None or message.type not in ANSWER_MESSAGE_TYPES:
        return None
    author = message.author
    return AnswerPosted(
        event_id=f"discord:message:{message.id}",
        at=snowflake_time(message.id),
        message=place.message(message.id),
        thread=place.thread,
        author=place.user(author.id, author.display_name),
        text=(message.content if with_text else None),
        author_is_bot=author.bot,
    )


def answer_edited(payload: discord.RawMessageUpdateEvent, place: Place) -> AnswerEdited | None:
    """A real edit of a message's text; `None` for updates that only resolved embeds (no edit time)."""
    edited = payload.data.get("edited_timestamp")
    if not edited:
        return None
    author = payload.data.get("author")
    author_ref = place.user(int(author["id"]), author.get("global_name") or author.get("username")) if author else None
    return AnswerEdited(
        event_id=f"discord:edit:{payload.message_id}:{edited}",
        at=discord.utils.parse_time(edited),
        message=place.message(payload.message_id),
        text=payload.data.get("content"),
        thread=place.thread,
        author=author_ref,
    )


def answer_deleted(message_id: int, place: Place, at: datetime) -> AnswerDeleted:
    return AnswerDeleted(event_id=f"discord:delete:{place.channel_id}:{message_id}", at=at, message=place.message(message_id))


def reaction_changed(
    payload: discord.RawReactionActionEvent, place: Place, at: datetime, *, reactor_is_bot: bool, delivery: str,
) -> ReactionAdded | ReactionRemoved | None:
    """A rating reaction taken or added; `delivery` tells apart repeats of the same reaction (gateway position).

    Discord's gateway events carry no delivery id, so the id is made from the natural key (message,
    reactor, emoji) plus the gateway session and sequence: a replay after RESUME repeats it exactly.
    """
    name = rating_name(payload.emoji)
    if name is None:
        return None
    added = payload.event_type == "REACTION_ADD"
    kind = ReactionAdded if added else ReactionRemoved
    return kind(
        event_id=f"discord:{'reaction_add' if added else 'reaction_remove'}:{payload.message_id}:{payload.user_id}:{name}:{delivery}",
        at=at,
        message=place.message(payload.message_id),
        reactor=place.user(payload.user_id),
        emoji=name,
        reactor_is_bot=reactor_is_bot,
    )


def command_text(subcommand: str, options: Iterable[object | None]) -> str:
    """The Slack-style text of a command, e.g. `setup 09:30 Europe/Berlin mon-fri mini`."""
    return " ".join([subcommand, *(str(value).strip() for value in options if value is not None and str(value).strip())])


def command_invoked(
    interaction_id: int, place: Place, user_id: int, user_name: str | None, text: str, *, is_admin: bool,
) -> CommandInvoked:
    return CommandInvoked(
        event_id=f"discord:interaction:{interaction_id}",
        at=snowflake_time(interaction_id),
        channel=place.channel,
        user=place.user(user_id, user_name),
        text=text,
        user_is_admin=is_admin,
        thread=place.thread,
    )


def drill_requested(interaction_id: int, place: Place, user_id: int, user_name: str | None, topic: str | None) -> DrillRequested:
    return DrillRequested(
        event_id=f"discord:interaction:{interaction_id}",
        at=snowflake_time(interaction_id),
        channel=place.channel,
        user=place.user(user_id, user_name),
        topic=(topic or "").strip(),
        thread=place.thread,
    )


def with_help_notes(message: Message, *, message_content: bool) -> Message:
    """`/prep help` plus what is particular to Discord: where organizer commands are, and the intent."""
    notes = [Context(ORGANIZER_NOTE)]
    if not message_content:
        notes.append(Context(MESSAGE_CONTENT_NOTE))
    return Message((*message.blocks, *notes))


def marker_footer(marker: str) -> str:
    return f"{MARKER_PREFIX}{marker}"


def nonce_for(marker: str) -> str:
    """The message nonce for a prompt (Discord allows 25 characters; markers are 20)."""
    return marker[:25]


def has_marker(message: discord.Message, marker: str) -> bool:
    """Whether a message is the prompt posted with `marker` (the nonce is not always returned, the footer is)."""
    if message.nonce is not None and str(message.nonce) == nonce_for(marker):
        return True
    wanted = marker_footer(marker)
    return any(embed.footer.text and wanted in embed.footer.text for embed in message.embeds)


def thread_name(message: Message) -> str:
    for block in message.blocks:
        if isinstance(block, Header | Text) and block.text.strip():
            return _clip(" ".join(block.text.split()), THREAD_NAME_CHARS)
    return "Answers"


def render(message: Message, *, marker: str | None = None) -> discord.Embed:
    """An embed: title from the first header, description from text and bullets, fields, footer from context."""
    title: str | None = None
    description: list[str] = []
    fields: list[tuple[str, str]] = []
    footer: list[str] = []
    for block in message.blocks:
        match block:
            case Header(text) if title is None:
                title = text
            case Header(text):
                description.append(f"**{text}**")
            case Text(text):
                description.append(text)
            case Bullets(items):
                description.append("\n".join(f"• {item}" for item in items))
            case Fields(pairs):
                fields.extend(pairs)
            case Context(text):
                footer.append(text)
            case Divider():
                description.append("\u2500" * 12)
    embed = discord.Embed(
        title=_clip(title, EMBED_TITLE_CHARS) if title else None,
        description=_clip("\n\n".join(description), EMBED_DESCRIPTION_CHARS) or None,
        colour=EMBED_COLOUR,
    )
    for label, value in fields[:EMBED_MAX_FIELDS]:
        embed.add_field(name=_clip(label, EMBED_FIELD_NAME_CHARS) or "\u200b",
                        value=_clip(value, EMBED_FIELD_VALUE_CHARS) or "\u200b", inline=True)
    text = " · ".join(footer)
    if marker is not None:  # last, and never clipped away: reconciliation looks for it
        tail = marker_footer(marker)
        text = f"{_clip(text, EMBED_FOOTER_CHARS - len(tail) - 3)} · {tail}" if text else tail
    if text:
        embed.set_footer(text=_clip(text, EMBED_FOOTER_CHARS))
    # Discord refuses an embed whose parts add up to more than 6,000 characters: drop trailing
    # fields first, then shorten the description; the footer (with the marker) stays whole.
    while len(embed) > EMBED_TOTAL_CHARS and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    if len(embed) > EMBED_TOTAL_CHARS and embed.description:
        embed.description = _clip(embed.description, len(embed.description) - (len(embed) - EMBED_TOTAL_CHARS)) or None
    return embed


def _clip(text: str | None, limit: int) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def thread_name_of(message: discord.Message) -> str:
    """The thread name for a prompt found again on Discord (from its embed's title)."""
    for embed in message.embeds:
        if embed.title:
            return _clip(embed.title, THREAD_NAME_CHARS)
    return "Answers"
