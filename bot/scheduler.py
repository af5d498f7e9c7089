"""Drives the due-post tick, and the inbox's pruning, with APScheduler inside the running loop.

The schedules themselves live in prepbot's own tables; APScheduler only calls `tick` every few
seconds (in memory, nothing pickled). Overlapping ticks are skipped rather than queued, and a
late tick still runs: what is due is decided by the tick, not by APScheduler's misfire rules.
Once an hour, starting a minute after start, old delivery ids are pruned (`PrepBot.prune_inbox`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core import PrepBot

logger = logging.getLogger(__name__)

# A tick in flight at shutdown may finish its sends (each is bounded by the poster's own timeout);
# past this it is cancelled, which is safe: an unrecorded claim is reconciled by marker on restart.
SHUTDOWN_GRACE_SECONDS = 10.0
PRUNE_EVERY_SECONDS = 3600.0
FIRST_PRUNE_AFTER = timedelta(minutes=1)  # not in the way of the start's catch-up posts


class TickScheduler:
    """Runs `core.tick()` now and every `every_seconds`, prunes the inbox now and then, and stops cleanly with the process."""

    def __init__(self, core: PrepBot, every_seconds: float, *, prune_every_seconds: float = PRUNE_EVERY_SECONDS,
                 first_prune_after: timedelta = FIRST_PRUNE_AFTER) -> None:
        self._core = core
        self._every = every_seconds
        self._prune_every = prune_every_seconds
        self._first_prune_after = first_prune_after
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        """Start ticking now (which also catches up on posts missed while down) and every interval after."""
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._tick, "interval", seconds=self._every, next_run_time=datetime.now(UTC),
            id="due-post-tick", max_instances=1, coalesce=True, misfire_grace_time=None,
        )
        self._scheduler.add_job(
            self._prune, "interval", seconds=self._prune_every, next_run_time=datetime.now(UTC) + self._first_prune_after,
            id="inbox-prune", max_instances=1, coalesce=True, misfire_grace_time=None,
        )
        self._scheduler.start()

    async def shutdown(self) -> None:
        """Stop scheduling ticks and let one in flight finish, so no database work outlives the engine."""
        if self._scheduler is None or not self._scheduler.running:
            return
        # Paused first: APScheduler's own shutdown cancels a running tick wherever it is.
        self._scheduler.pause()
        if self._running:
            await asyncio.wait(set(self._running), timeout=SHUTDOWN_GRACE_SECONDS)
        self._scheduler.shutdown(wait=False)

    async def _tick(self) -> None:
        with self._tracked():
            try:
                for result in await self._core.tick():
                    logger.info("tick: %s %s %s", result.channel, result.local_date, result.outcome)
            except Exception:
                logger.exception("the due-post tick failed; it runs again at the next interval")

    async def _prune(self) -> None:
        with self._tracked():
            try:
                removed = await self._core.prune_inbox()
            except Exception:
                logger.exception("pruning the inbox failed; it runs again at the next interval")
            else:
                logger.log(logging.INFO if removed else logging.DEBUG, "pruned %d old delivery ids from the inbox", removed)

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        """Count the running job as in flight, so that shutdown waits for it."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._running.discard(task)
