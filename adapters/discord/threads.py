"""Which channel each thread belongs to, learned from the gateway and asked of REST when unknown."""

from __future__ import annotations

import logging

import discord

logger = logging.getLogger(__name__)

NOT_A_THREAD = 0


class ThreadParents:
    """Maps a channel id to its parent channel's id, or to `NOT_A_THREAD`.

    A prompt's thread is started on the prompt message, so the core names a prompt by its parent
    channel; every thread event must be placed in that parent.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._parents: dict[int, int] = {}
        self._limit = limit
        self._fresh: set[int] = set()

    def opened(self, thread_id: int, parent_id: int) -> None:
        """This process just opened a prompt's thread: the core records the prompt only after the post returns."""
        self.remember(thread_id, parent_id)
        self._fresh.add(thread_id)

    def is_fresh(self, thread_id: int) -> bool:
        return thread_id in self._fresh

    def settled(self, thread_id: int) -> None:
        self._fresh.discard(thread_id)

    def remember(self, thread_id: int, parent_id: int) -> None:
        if len(self._parents) >= self._limit:
            self._parents.pop(next(iter(self._parents)))
        self._parents[thread_id] = parent_id

    def learn(self, channel: object) -> None:
        """Note what a channel object says about itself (threads know their parent)."""
        if isinstance(channel, discord.Thread) and channel.parent_id:
            self.remember(channel.id, channel.parent_id)
        elif isinstance(channel, discord.abc.GuildChannel):
            self.remember(channel.id, NOT_A_THREAD)

    async def parent_of(self, client: discord.Client, channel_id: int) -> int | None:
        """The parent of a thread, or `None` when `channel_id` is not a thread (or cannot be seen)."""
        known = self._parents.get(channel_id)
        if known is None:
            channel = client.get_channel(channel_id)
            if channel is None:
                try:
                    channel = await client.fetch_channel(channel_id)
                except discord.HTTPException:
                    logger.warning("could not look up channel %s to place an event", channel_id, exc_info=True)
                    return None
            self.learn(channel)
            known = self._parents.get(channel_id, NOT_A_THREAD)
        return None if known == NOT_A_THREAD else known
