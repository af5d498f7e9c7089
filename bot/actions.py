"""Outbound actions: what the core asks a platform to do, and the replies it hands back."""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef


@dataclass(frozen=True, slots=True)
class PostPrompt:
    """Post the day's question at the top of a channel and open a thread for it.

    `marker` identifies the prompt on the platform (Slack message metadata, Discord nonce), so a
    post whose outcome is unknown can be found again instead of being sent twice.
    """

    channel: ChannelRef
    message: Message
    marker: str


@dataclass(frozen=True, slots=True)
class PostReply:
    """Reply in a thread."""

    thread: MessageRef
    message: Message


@dataclass(frozen=True, slots=True)
class PostPrivately:
    """Show a message to one member only (Slack ephemeral message, Discord DM, console aside).

    `thread` is where it belongs, when it answers something said in a thread: Slack shows the
    ephemeral message there; platforms without private thread messages ignore it.
    """

    channel: ChannelRef
    user: UserRef
    message: Message
    thread: MessageRef | None = None


Action = PostPrompt | PostReply | PostPrivately


def action_channel(action: Action) -> ChannelRef:
    """The channel an action happens in."""
    if isinstance(action, PostReply):
        return action.thread.channel
    return action.channel


@dataclass(frozen=True, slots=True)
class Reply:
    """The core's answer to a command or drill, delivered by the adapter where it was asked.

    `private` replies are shown only to the asker (ephemeral on Slack, on Discord an ephemeral
    interaction response); public ones go where the command was invoked, e.g. into the thread.
    """

    message: Message
    private: bool = True
