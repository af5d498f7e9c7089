"""The Slack `ChatPort`: posts through the Web API, paced per channel, and finds prompts by their metadata marker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import translate
from bot.actions import Action, PostPrivately, PostReply
from bot.messages import Message
from bot.refs import ChannelRef, MessageRef, UserRef

logger = logging.getLogger(__name__)

ClientFor = Callable[[str], Awaitable[AsyncWebClient]]
"""The Web API client holding the bot token of a workspace (team id)."""

Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs work in the background, after the current request is acknowledged."""

HISTORY_PAGES = 10


class Pacer:
    """Spaces calls with the same key at least `interval` seconds apart, first come first served.

    Each caller reserves the next free slot before it waits, so concurrent posts to one channel
    queue up in order instead of bursting past Slack's one message per second per channel.
    """

    def __init__(
        self, interval: float, *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        now = self._clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self._interval
        if len(self._next) > 1024:
            self._next = {k: t for k, t in self._next.items() if t > now}
        if slot > now:
            await self._sleep(slot - now)


class SlackChat:
    """What the core asks of Slack, done with the workspace's own bot token.

    Private notes (`PostPrivately`) are sent in the background: the core sends them while it
    handles an answer, which happens before Slack's event is acknowledged.
    """

    def __init__(self, client_for: ClientFor, pacer: Pacer, spawn: Spawn) -> None:
        self._client_for = client_for
        self._pacer = pacer
        self._spawn = spawn

    async def perform(self, action: Action) -> MessageRef | None:
        if isinstance(action, PostPrivately):
            self._spawn(self.reply_privately(action.channel, action.user, action.message, action.thread))
            return None
        arguments = translate.post_arguments(action)
        channel = action.thread.channel if isinstance(action, PostReply) else action.channel
        client = await self._client_for(channel.workspace.id)
        await self._pacer.wait(f"{channel.workspace.id}/{channel.id}")
        response = await client.chat_postMessage(**arguments)
        return MessageRef(channel, str(response["ts"]))

    async def find_prompt(self, channel: ChannelRef, marker: str, since: datetime) -> MessageRef | None:
        client = await self._client_for(channel.workspace.id)
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            arguments: dict[str, Any] = {
                "channel": channel.id, "oldest": f"{since.timestamp():.6f}", "inclusive": True,
                "include_all_metadata": True, "limit": 200,
            }
            if cursor:
                arguments["cursor"] = cursor
            response = await client.conversations_history(**arguments)
            for message in response.get("messages") or []:
                if translate.prompt_marker(message) == marker:
                    return MessageRef(channel, str(message["ts"]))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        logger.warning("gave up looking for prompt marker in %s after %s pages of history", channel, HISTORY_PAGES)
        return None

    async def reply_privately(self, channel: ChannelRef, user: UserRef, message: Message, thread: MessageRef | None = None) -> None:
        """An ephemeral message, in a thread when given one."""
        arguments = translate.post_arguments(PostPrivately(channel, user, message))
        if thread is not None:
            arguments["thread_ts"] = thread.id
        client = await self._client_for(channel.workspace.id)
        await client.chat_postEphemeral(**arguments)
