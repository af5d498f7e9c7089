"""Benchmark: resident memory of a running `prepbot run` serving Slack (and Discord when available) with 1,000 channels.

Seeds a fresh database with `--channels` channels (spread over workspaces installed through
OAuth, all scheduled for the current minute, so the first tick posts to every one of them), starts
`python -m bot run` against the fake Slack, and reads the process's RSS from /proc: after
start-up, and again once the tick has posted to every channel. Prints one JSON line.

    python -m benchmarks.memory            # 1000 channels
    python -m benchmarks.memory --small    # CI: 50 channels
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import bot_environment, database, free_port, machine, rss_bytes, running_bot
from benchmarks.fanout import SIGNING_SECRET, LimitedSlack, posted_in_database, seed
from bot.settings import Settings

TARGET_MB = 100.0
MB = 1024 * 1024


async def measure(url: str, folder: Path, channels: int, workspaces: int, timeout: float) -> dict[str, Any]:
    # Limits far above what the run needs: this measures memory, not pacing.
    fake = LimitedSlack(burst=channels, per_second=float(channels))
    async with fake:
        environment = bot_environment(
            url, free_port(), SLACK_CLIENT_ID=fake.client_id, SLACK_CLIENT_SECRET=fake.client_secret,
            SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_STATE_SECRET="benchmark-state-secret", SLACK_API_URL=fake.api_url,
            PREP_TICK_SECONDS="1")
        await seed(Settings.from_env(environment), fake, channels, workspaces)
        async with running_bot(environment, folder) as bot:
            after_start = rss_bytes(bot.pid)
            deadline = time.monotonic() + timeout
            while len(fake.posted_at) < channels and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # the tick records its posts and a second tick runs, finding nothing due
            after_tick = rss_bytes(bot.pid)
        posted = await posted_in_database(url)
    return {
        "channels": channels, "workspaces": workspaces, "platforms": ["slack"],
        "rss_after_start_mb": round(after_start / MB, 1), "rss_after_tick_mb": round(after_tick / MB, 1),
        "posted_channels": len(fake.posted_at), "prompts_recorded": posted,
    }


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CI size: 50 channels")
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--workspaces", type=int, default=None)
    args = parser.parse_args(argv)
    channels = args.channels or (50 if args.small else 1000)
    workspaces = args.workspaces or (2 if args.small else 20)
    with tempfile.TemporaryDirectory(prefix="prepbot-memory-") as name:
        async with database("sqlite", Path(name)) as url:
            figures = await measure(url, Path(name), channels, workspaces, 60.0 if args.small else 300.0)
    peak = max(figures["rss_after_start_mb"], figures["rss_after_tick_mb"])
    result = {
        "benchmark": "memory", "backend": "sqlite", "small": args.small, **figures,
        "target_mb": TARGET_MB, "target_met": peak <= TARGET_MB and figures["prompts_recorded"] == channels,
        "machine": machine(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
