"""Pure translation between Slack payloads and the core's vocabulary: events in, Web API arguments out."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from bot.actions import Action, PostPrivately, PostPrompt, PostReply
from bot.answers import RATING_EMOJI
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
from bot.messages import Bullets, Context, Divider, Fields, Header, Message, Text
from bot.refs import ChannelRef, MessageRef, UserRef, WorkspaceRef

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

PLATFORM = "slack"
PROMPT_EVENT_TYPE = "prepbot_prompt"
REPLY_EVENT_TYPE = "prepbot_reply"
DRILL_CALLBACK_ID = "drill_me"

# Subtypes that are a member's reply carrying text; every other subtype (joins, topic changes, …) is not an answer.
_ANSWER_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "bot_message", "me_message"})
_DRILL_WORD = re.compile(r"\bdrill\b", re.IGNORECASE)
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"(<(?:[@#!][^>]*|https?://[^>]*|mailto:[^>]*)>)")

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_SECTION_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_FALLBACK_CHARS = 4000


def ignoring_malformed(translate: Callable[P, R]) -> Callable[P, R | None]:
    """A translation that answers None, as for anything the core ignores, when a payload's fields have the wrong shape.

    Slack signs what it sends, so such a payload is not an attack, but it will never translate:
    failing on it would answer 500 and have Slack send it again and again.
    """

    @functools.wraps(translate)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return translate(*args, **kwargs)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            logger.warning("ignoring a malformed Slack payload (%s: %s)", type(error).__name__, error)
            return None

    return translated


def workspace(team_id: str) -> WorkspaceRef:
    return WorkspaceRef(PLATFORM, team_id)


def timestamp(ts: str | float | int) -> datetime:
    """A Slack `ts` ("1712345678.000200") or epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), UTC)


def event_id(team_id: str, *parts: str) -> str:
    return ":".join((PLATFORM, team_id, *parts))


# ---- inbound: Events API -------------------------------------------------------------------------


# The high-volume Events API events: prepbot serves them without bolt's general dispatch (see the adapter's fast path).
FAST_EVENT_TYPES = frozenset({"message", "reaction_added", "reaction_removed"})


def is_fast_event(body: Mapping[str, Any]) -> bool:
    """Whether an Events API body is a message (any subtype) or a reaction, the events that arrive by the thousand."""
    event = body.get("event")
    return body.get("type") == "event_callback" and isinstance(event, dict) and event.get("type") in FAST_EVENT_TYPES


@ignoring_malformed
def event_from_callback(body: Mapping[str, Any], bot_user_id: str | None = None) -> Event | None:
    """The core event for an Events API `event_callback` envelope, or None for what the core ignores."""
    event = body.get("event") or {}
    team_id = str(body.get("team_id") or event.get("team") or "")
    if not team_id or not body.get("event_id"):
        return None
    delivery = event_id(team_id, str(body["event_id"]))
    at = timestamp(event.get("event_ts") or event.get("ts") or body.get("event_time") or 0)
    match event.get("type"):
        case "message":
            return _message_event(event, workspace(team_id), delivery, at, bot_user_id)
        case "reaction_added" | "reaction_removed":
            return _reaction_event(event, workspace(team_id), delivery, at)
        case "app_mention":
            return _mention_drill(event, workspace(team_id), delivery, at, bot_user_id)
    return None


def _message_event(
    event: Mapping[str, Any], ws: WorkspaceRef, delivery: str, at: datetime, bot_user_id: str | None,
) -> AnswerPosted | AnswerEdited | AnswerDeleted | None:
    channel_id = event.get("channel")
    if not channel_id:
        return None
    channel = ChannelRef(ws, str(channel_id))
    subtype = event.get("subtype")
    if subtype == "message_changed":
        message = event.get("message") or {}
        thread_ts, ts = message.get("thread_ts"), message.get("ts")
        if not ts or not thread_ts or thread_ts == ts or _is_bot(message) or _addresses_bot(message, bot_user_id):
            return None  # a thread's parent (reply counts change it) or a bot's message
        user = message.get("user")
        return AnswerEdited(
            delivery, at, MessageRef(channel, str(ts)), message.get("text"),
            thread=MessageRef(channel, str(thread_ts)), author=UserRef(ws, str(user)) if user else None)
    if subtype == "message_deleted":
        deleted_ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        previous = event.get("previous_message")
        if not deleted_ts:
            return None
        if previous is not None and previous.get("thread_ts") in (None, previous.get("ts")):
            return None  # a top-level message, never an answer
        return AnswerDeleted(delivery, at, MessageRef(channel, str(deleted_ts)))
    if subtype not in _ANSWER_SUBTYPES:
        return None
    ts, thread_ts = event.get("ts"), event.get("thread_ts")
    author = event.get("user") or event.get("bot_id")
    if not ts or not thread_ts or thread_ts == ts or not author:
        return None
    if bot_user_id is not None and author == bot_user_id:
        return None
    if _addresses_bot(event, bot_user_id):
        return None  # "@prepbot drill" is a request to the bot, handled as an app_mention
    return AnswerPosted(
        delivery, at, MessageRef(channel, str(ts)), MessageRef(channel, str(thread_ts)),
        UserRef(ws, str(author)), event.get("text"), author_is_bot=_is_bot(event))


def _is_bot(message: Mapping[str, Any]) -> bool:
    return bool(message.get("bot_id")) or message.get("subtype") == "bot_message"


def _addresses_bot(message: Mapping[str, Any], bot_user_id: str | None) -> bool:
    return is_drill_request(str(message.get("text") or ""), bot_user_id)


def is_drill_request(text: str, bot_user_id: str | None) -> bool:
    """Whether a message mentions the bot and asks it for a drill."""
    return bot_user_id is not None and f"<@{bot_user_id}" in text and bool(_DRILL_WORD.search(text))


def rating_emoji(reaction: str) -> str | None:
    """`four::skin-tone-3` -> `four`; None for any emoji that is not a rating."""
    name = reaction.split("::", 1)[0]
    return name if name in RATING_EMOJI else None


def _reaction_event(event: Mapping[str, Any], ws: WorkspaceRef, delivery: str, at: datetime) -> ReactionAdded | ReactionRemoved | None:
    item = event.get("item") or {}
    emoji = rating_emoji(str(event.get("reaction") or ""))
    user, channel_id, ts = event.get("user"), item.get("channel"), item.get("ts")
    if item.get("type") != "message" or emoji is None or not user or not channel_id or not ts:
        return None
    kind = ReactionAdded if event.get("type") == "reaction_added" else ReactionRemoved
    return kind(delivery, at, MessageRef(ChannelRef(ws, str(channel_id)), str(ts)), UserRef(ws, str(user)), emoji)


def _mention_drill(event: Mapping[str, Any], ws: WorkspaceRef, delivery: str, at: datetime, bot_user_id: str | None) -> DrillRequested | None:
    text = str(event.get("text") or "")
    channel_id, user = event.get("channel"), event.get("user")
    if not channel_id or not user or not _DRILL_WORD.search(text):
        return None
    if bot_user_id is not None and f"<@{bot_user_id}" not in text:
        return None
    channel = ChannelRef(ws, str(channel_id))
    thread_ts = event.get("thread_ts")
    topic = _DRILL_WORD.split(_MENTION.sub(" ", text), maxsplit=1)[-1]
    return DrillRequested(
        delivery, at, channel, UserRef(ws, str(user)), topic=" ".join(topic.split()),
        thread=MessageRef(channel, str(thread_ts)) if thread_ts else None)


# ---- inbound: slash commands and shortcuts -------------------------------------------------------


@ignoring_malformed
def command_event(command: Mapping[str, Any], at: datetime, *, user_is_admin: bool = False) -> CommandInvoked | DrillRequested | None:
    """`/prep …` or `/drill …` from a slash command's form fields."""
    team_id, channel_id, user_id = command.get("team_id"), command.get("channel_id"), command.get("user_id")
    trigger = command.get("trigger_id")
    if not team_id or not channel_id or not user_id or not trigger:
        return None
    ws = workspace(str(team_id))
    channel = ChannelRef(ws, str(channel_id))
    user = UserRef(ws, str(user_id), command.get("user_name"))
    delivery = event_id(str(team_id), "cmd", str(trigger))
    text = str(command.get("text") or "").strip()
    name = str(command.get("command") or "").lstrip("/").lower()
    if name == "drill":
        # Slack refuses slash commands in threads, so /drill is always in the channel: the core drills on the latest question.
        return DrillRequested(delivery, at, channel, user, topic=text)
    if name == "prep":
        return CommandInvoked(delivery, at, channel, user, text, user_is_admin=user_is_admin)
    return None


@ignoring_malformed
def shortcut_event(shortcut: Mapping[str, Any], at: datetime) -> DrillRequested | None:
    """The "Drill me on this" message shortcut: a drill in the thread of the message it was used on."""
    team_id = (shortcut.get("team") or {}).get("id")
    channel_id = (shortcut.get("channel") or {}).get("id")
    user_id = (shortcut.get("user") or {}).get("id")
    message = shortcut.get("message") or {}
    trigger = shortcut.get("trigger_id")
    if shortcut.get("callback_id") != DRILL_CALLBACK_ID or not team_id or not channel_id or not user_id or not trigger:
        return None
    ws = workspace(str(team_id))
    channel = ChannelRef(ws, str(channel_id))
    root = message.get("thread_ts") or message.get("ts") or shortcut.get("message_ts")
    return DrillRequested(
        event_id(str(team_id), "shortcut", str(trigger)), at, channel, UserRef(ws, str(user_id)),
        thread=MessageRef(channel, str(root)) if root else None)


# ---- outbound ------------------------------------------------------------------------------------


def prompt_metadata(marker: str, event_type: str = PROMPT_EVENT_TYPE) -> dict[str, Any]:
    return {"event_type": event_type, "event_payload": {"marker": marker}}


def prompt_marker(message: Mapping[str, Any], event_type: str = PROMPT_EVENT_TYPE) -> str | None:
    """The reconcile marker a prompt carries in its message metadata, if it is one of ours."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != event_type:
        return None
    marker = (metadata.get("event_payload") or {}).get("marker")
    return str(marker) if marker else None


def reply_marker(message: Mapping[str, Any]) -> str | None:
    """The marker a thread reply of ours carries, so a reply whose outcome was unknown is found instead of resent."""
    return prompt_marker(message, REPLY_EVENT_TYPE)


def post_arguments(action: Action, *, marker: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `chat.postMessage` (prompt, thread reply) or `chat.postEphemeral` (private).

    A thread reply carries `marker` in its metadata when given one.
    """
    rendered: dict[str, Any] = {"blocks": blocks(action.message), "text": fallback_text(action.message)}
    match action:
        case PostPrompt(channel=channel, marker=prompt):
            return {"channel": channel.id, **rendered, "metadata": prompt_metadata(prompt),
                    "unfurl_links": False, "unfurl_media": False}
        case PostReply(thread=thread):
            reply = {"metadata": prompt_metadata(marker, REPLY_EVENT_TYPE)} if marker is not None else {}
            return {"channel": thread.channel.id, "thread_ts": thread.id, **rendered, **reply,
                    "unfurl_links": False, "unfurl_media": False}
        case PostPrivately(channel=channel, user=user):
            return {"channel": channel.id, "user": user.id, **rendered}
    raise TypeError(f"not a Slack action: {action!r}")


def fallback_text(message: Message) -> str:
    return _clip(escape(message.plain_text()), MAX_FALLBACK_CHARS)


def blocks(message: Message) -> list[dict[str, Any]]:
    """Block Kit for a neutral message, within Slack's per-block and per-message limits."""
    rendered: list[dict[str, Any]] = []
    for block in message.blocks:
        match block:
            case Header(text):
                rendered.append({"type": "header", "text": {"type": "plain_text", "text": _clip(text, MAX_HEADER_CHARS), "emoji": True}})
            case Text(text):
                rendered.extend(_sections(escape(text)))
            case Bullets(items):
                rendered.extend(_sections("\n".join(f"• {escape(item)}" for item in items)))
            case Fields(pairs):
                fields = [_mrkdwn(_clip(f"*{escape(label)}*\n{escape(value)}", MAX_FIELD_CHARS)) for label, value in pairs]
                rendered.extend({"type": "section", "fields": fields[i:i + MAX_FIELDS]} for i in range(0, len(fields), MAX_FIELDS))
            case Context(text):
                rendered.append({"type": "context", "elements": [_mrkdwn(_clip(escape(text), MAX_FIELD_CHARS))]})
            case Divider():
                rendered.append({"type": "divider"})
    return rendered[:MAX_BLOCKS]


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` for mrkdwn, keeping Slack's own `<@U…>`, `<#C…>`, `<!here>` and link syntax."""
    parts = _SPECIAL.split(text)
    return "".join(part if i % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                   for i, part in enumerate(parts))


def _sections(text: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    chunks = [text[i:i + MAX_SECTION_CHARS] for i in range(0, len(text), MAX_SECTION_CHARS)]
    return [{"type": "section", "text": _mrkdwn(chunk)} for chunk in chunks]


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
