"""Drives the due-post tick with APScheduler inside the running loop.

The schedules themselves live in prepbot's own tables; APScheduler only calls `tick` every few
seconds (in memory, nothing pickled). Overlapping ticks are skipped rather than queued, and a
late tick still runs: what is due is decided by the tick, not by APScheduler's misfire rules.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core import PrepBot

logger = logging.getLogger(__name__)


class TickScheduler:
    def __init__(self, core: PrepBot, every_seconds: float) -> None:
        self._core = core
        self._every = every_seconds
        self._scheduler: AsyncIOScheduler | None = None

    def start(self) -> None:
        """Start ticking now (which also catches up on posts missed while down) and every interval after."""
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._tick, "interval", seconds=self._every, next_run_time=datetime.now(UTC),
            id="due-post-tick", max_instances=1, coalesce=True, misfire_grace_time=None,
        )
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def _tick(self) -> None:
        try:
            for result in await self._core.tick():
                logger.info("tick: %s %s %s", result.channel, result.local_date, result.outcome)
        except Exception:
            logger.exception("the due-post tick failed; it runs again at the next interval")
