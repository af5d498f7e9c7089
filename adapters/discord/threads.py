"""Which channel each thread belongs to, learned from the gateway and asked of REST when unknown."""

from __future__ import annotations

import asyncio
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
        self._lookups: dict[int, asyncio.Future[None]] = {}

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
            if channel is not None:
                self.learn(channel)
            else:
                # A burst of events from one uncached thread makes one REST request, not one each.
                lookup = self._lookups.get(channel_id)
                if lookup is None:
                    lookup = self._lookups[channel_id] = asyncio.ensure_future(self._look_up(client, channel_id))
                    lookup.add_done_callback(lambda _: self._lookups.pop(channel_id, None))
                await asyncio.shield(lookup)
            known = self._parents.get(channel_id, NOT_A_THREAD)
        return None if known == NOT_A_THREAD else known

    async def _look_up(self, client: discord.Client, channel_id: int) -> None:
        try:
            self.learn(await client.fetch_channel(channel_id))
        except (discord.Forbidden, discord.NotFound):
            # Asking again for every event would only pile up invalid requests (401/403/404 count).
            logger.info("channel %s cannot be looked up; its events are ignored", channel_id)
            self.remember(channel_id, NOT_A_THREAD)
        except discord.HTTPException:
            logger.warning("could not look up channel %s to place an event", channel_id, exc_info=True)
