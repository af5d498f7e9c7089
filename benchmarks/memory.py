"""Benchmark: resident memory of a running `prepbot run` serving Slack and Discord with 1,000 channels.

Seeds a fresh database with `--channels` channels, half on Slack (spread over workspaces installed
through OAuth) and half in a Discord guild, all scheduled for the current minute so that the first
tick posts to every one of them; starts `python -m bot run` with both adapters against the fake
Slack and the fake Discord, and reads the RSS of the bot's process alone (the fakes run in this
one) from /proc: once both adapters are up, again once the tick has posted to every channel, and
the process's peak (VmHWM) at that point. Prints one JSON line.

The database is at head when the bot starts, as at every start but the first after an upgrade;
`--migrate-at-start` leaves it one revision behind, so the bot runs that migration itself first.

    python -m benchmarks.memory                      # 1000 channels, Slack and Discord
    python -m benchmarks.memory --platforms slack    # 1000 channels, Slack only
    python -m benchmarks.memory --migrate-at-start   # the first start after an upgrade
    python -m benchmarks.memory --small              # CI: 50 channels
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

from alembic.script import ScriptDirectory

import migrations
from benchmarks.common import bot_environment, database, free_port, machine, rss_bytes, running_bot
from benchmarks.fanout import SIGNING_SECRET, LimitedDiscord, LimitedSlack, posted_in_database, seed, seed_discord
from bot import db
from bot.settings import Settings

TARGET_MB = 100.0
MB = 1024 * 1024


async def step_back_one_revision(url: str) -> str:
    """Downgrade the database to the revision before head, so that the bot's start migrates it; returns that revision."""
    previous = ScriptDirectory.from_config(db.alembic_config(url)).get_revision(migrations.HEAD).down_revision
    assert isinstance(previous, str)
    engine = db.create_engine(url)
    try:
        await db.downgrade(engine, previous)
    finally:
        await engine.dispose()
    return previous


async def measure(
    url: str, folder: Path, channels: int, workspaces: int, platforms: list[str], timeout: float, *, migrate_at_start: bool,
) -> dict[str, Any]:
    on_discord = channels // 2 if "discord" in platforms else 0
    on_slack = channels - on_discord if "slack" in platforms else 0
    # Limits far above what the run needs: this measures memory, not pacing.
    slack = LimitedSlack(burst=channels, per_second=float(channels))
    discord = LimitedDiscord()
    async with slack, discord:
        environment = bot_environment(url, free_port(), PREP_TICK_SECONDS="1")
        if on_slack:
            environment |= {"SLACK_CLIENT_ID": slack.client_id, "SLACK_CLIENT_SECRET": slack.client_secret,
                            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_STATE_SECRET": "benchmark-state-secret",
                            "SLACK_API_URL": slack.api_url}
        if on_discord:
            environment |= {"DISCORD_TOKEN": discord.token, "DISCORD_API_URL": discord.api_url,
                            "DISCORD_GATEWAY_URL": discord.gateway_url}
        settings = Settings.from_env(environment)
        if on_slack:
            await seed(settings, slack, on_slack, workspaces)
        discord_channels = discord.add_channels(on_discord)
        if on_discord:
            await seed_discord(settings, discord, discord_channels)  # migrations again: a no-op at head
        started_at = await step_back_one_revision(url) if migrate_at_start else migrations.HEAD

        def posted() -> int:
            on_discord_posted = sum(1 for n in discord.prompts_by_channel(discord_channels).values() if n)
            return len(slack.posted_at) + on_discord_posted

        async with running_bot(environment, folder, healthz=bool(on_slack)) as bot:
            if on_discord:
                await discord.wait_for(lambda: discord.live is not None, 60, "the bot to log in to Discord")
            after_start = rss_bytes(bot.pid)
            deadline = time.monotonic() + timeout
            while posted() < channels and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # the tick records its posts and a second tick runs, finding nothing due
            after_tick, peak = rss_bytes(bot.pid), rss_bytes(bot.pid, "VmHWM")
        recorded = await posted_in_database(url)
    return {
        "channels": channels, "slack_channels": on_slack, "slack_workspaces": workspaces if on_slack else 0,
        "discord_channels": on_discord, "platforms": platforms, "database_at_start": started_at,
        "rss_after_start_mb": round(after_start / MB, 1), "rss_after_tick_mb": round(after_tick / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "posted_channels": posted(), "prompts_recorded": recorded,
    }


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CI size: 50 channels")
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--workspaces", type=int, default=None, help="Slack workspaces the Slack channels are spread over")
    parser.add_argument("--platforms", default="slack,discord", help="slack, discord, or both (comma-separated)")
    parser.add_argument("--migrate-at-start", action="store_true", help="start the bot one revision behind head")
    args = parser.parse_args(argv)
    platforms = [p for p in ("slack", "discord") if p in args.platforms.split(",")]
    channels = args.channels or (50 if args.small else 1000)
    workspaces = args.workspaces or (2 if args.small else 20)
    with tempfile.TemporaryDirectory(prefix="prepbot-memory-") as name:
        async with database("sqlite", Path(name)) as url:
            figures = await measure(url, Path(name), channels, workspaces, platforms, 60.0 if args.small else 300.0,
                                    migrate_at_start=args.migrate_at_start)
    peak = max(figures["rss_after_start_mb"], figures["rss_after_tick_mb"], figures["rss_peak_mb"])
    result = {
        "benchmark": "memory", "backend": "sqlite", "small": args.small, **figures,
        "target_mb": TARGET_MB, "target_met": peak <= TARGET_MB and figures["prompts_recorded"] == channels,
        "machine": machine(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
