"""The one port through which the core asks a platform to act."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from bot.actions import Action, PostPrivately, action_channel
from bot.refs import ChannelRef, MessageRef

logger = logging.getLogger(__name__)


class ChatPort(Protocol):
    """What the core needs from a chat platform."""

    async def perform(self, action: Action) -> MessageRef | None:
        """Carry out `action`; return the message it created, if it created one."""
        ...

    async def find_prompt(self, channel: ChannelRef, marker: str, since: datetime) -> MessageRef | None:
        """Find a prompt posted with `marker` at or after `since`, for reconciling an unknown outcome."""
        ...


async def send_quietly(chat: ChatPort, note: PostPrivately) -> None:
    """Send a courtesy note; its failure (a member who refuses DMs, a platform shutting down) is only logged."""
    try:
        await chat.perform(note)
    except Exception as error:
        logger.warning("could not send a private note to %s in %s: %r", note.user.id, note.channel, error)
        logger.debug("the private note's failure in full", exc_info=True)


class ChatRouter:
    """A `ChatPort` that hands each action to the port of its platform."""

    def __init__(self, ports: dict[str, ChatPort] | None = None) -> None:
        self._ports: dict[str, ChatPort] = dict(ports or {})

    def register(self, platform: str, port: ChatPort) -> None:
        self._ports[platform] = port

    @property
    def platforms(self) -> frozenset[str]:
        return frozenset(self._ports)

    async def perform(self, action: Action) -> MessageRef | None:
        return await self._port(action_channel(action).workspace.platform).perform(action)

    async def find_prompt(self, channel: ChannelRef, marker: str, since: datetime) -> MessageRef | None:
        return await self._port(channel.workspace.platform).find_prompt(channel, marker, since)

    def _port(self, platform: str) -> ChatPort:
        try:
            return self._ports[platform]
        except KeyError:
            raise LookupError(f"no adapter is running for platform {platform!r}") from None
