"""Benchmark: 1,000 channels due at the same minute, posted through a fake Slack that enforces Slack's limits with 429s.

Starts `python -m bot run` (Slack, HTTP mode, multi-workspace through stored OAuth installations)
on a fresh database holding `--channels` channels spread over `--workspaces` workspaces, every one
scheduled for the current minute. The fake Slack answers `chat.postMessage` with 429 and
`Retry-After` past either limit it models:

- per channel: one message a second (Slack: "1 message per second to a specific channel");
- per workspace: a token bucket of `--burst` messages refilled at `--per-second` a second
  (Slack: "limits governing your app's relationship with the entire workspace ... several hundred
  messages per minute"; the default, 5 a second, is 300 a minute).

It measures the time from the bot being up (its first tick runs as it starts) to the last post,
and compares it with the floor those limits allow: the busiest workspace's posts beyond its burst, at its refill rate. Every channel must be
posted exactly once. Prints one JSON line.

    python -m benchmarks.fanout            # 1000 channels in 20 workspaces
    python -m benchmarks.fanout --small    # CI: 40 channels in 2 workspaces, bursts of 5
    python -m benchmarks.fanout --platform discord [--small]

With `--platform discord` the channels are in one guild of a fake Discord that enforces 50
requests a second per bot (`--global-per-second`; 20 with `--small`, so that the small run meets
the limit and retries past it) and 5 messages per 5 seconds per channel with 429s (`LimitedDiscord`);
each prompt takes two requests (the message, then its thread), so the floor is 2 × channels ÷ 50 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import func, insert, select

from adapters.slack.oauth import SqlInstallationStore
from benchmarks.common import DEFAULT_POSTGRES_URL, bot_environment, database, free_port, machine, running_bot
from bot import db, models
from bot.app import prepare_database
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord, _json
from tests.fakes.slack import Call, FakeSlack, Workspace, _arguments, _bearer

SIGNING_SECRET = "benchmark-signing-secret-0123456789abcdef"
TARGET_FACTOR = 1.1
TARGET_SLACK_SECONDS = 5.0


class LimitedSlack(FakeSlack):
    """The fake Slack with chat.postMessage's limits enforced: 429 and Retry-After, and nothing posted, past either."""

    def __init__(self, *, burst: int, per_second: float) -> None:
        super().__init__()
        self.burst, self.per_second = burst, per_second
        self._buckets: dict[str, tuple[float, float]] = {}  # team -> (tokens, at)
        self._last_in_channel: dict[str, float] = {}
        self.limited: Counter[str] = Counter()
        self.posted_at: dict[str, list[float]] = {}
        self.first_attempts: list[float] = []

    def add_workspace(self, team_id: str) -> Workspace:
        workspace = Workspace(team_id, f"xoxb-{team_id}-token", f"UBOT{team_id}", f"BBOT{team_id}")
        self.workspaces[workspace.bot_token] = workspace
        return workspace

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["method"] != "chat.postMessage":
            return await super()._api(request)
        args = await _arguments(request)  # the body can be read once, so the call is answered here, not by super()
        token = _bearer(request) or args.pop("token", None)
        workspace = self.workspaces.get(token or "")
        channel = str(args.get("channel"))
        now = time.monotonic()
        if not self.first_attempts:
            self.first_attempts.append(now)
        if workspace is not None:
            wait = self._channel_wait(channel, now) or self._workspace_wait(workspace.team_id, now)
            if wait:
                self.limited["channel" if self._channel_wait(channel, now) else "workspace"] += 1
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                         headers={"Retry-After": str(max(1, math.ceil(wait)))})
            tokens, _ = self._buckets[workspace.team_id]
            self._buckets[workspace.team_id] = (tokens - 1, now)
            self._last_in_channel[channel] = now
            self.posted_at.setdefault(channel, []).append(now)
        self.calls.append(Call("chat.postMessage", args, token, now))
        return web.json_response(self._answer("chat.postMessage", args, token))

    def _channel_wait(self, channel: str, now: float) -> float:
        last = self._last_in_channel.get(channel)
        return 0.0 if last is None or now - last >= 1.0 else 1.0 - (now - last)

    def _workspace_wait(self, team_id: str, now: float) -> float:
        tokens, at = self._buckets.get(team_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        self._buckets[team_id] = (tokens, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.per_second


class LimitedDiscord(FakeDiscord):
    """The fake Discord with its documented limits enforced by 429s with `retry_after` (and nothing done past them).

    - global: `global_per_second` requests a second per bot (Discord: "All bots can make up to 50
      requests per second to our API"), counted in one-second windows, answered with
      `"global": true` and `X-RateLimit-Scope: global`;
    - per channel: 5 messages created per 5 seconds, announced in `X-RateLimit-*` headers on every
      message created, and on its 429s, as Discord does, so a client can pace itself by them.
    """

    GLOBAL_PER_SECOND = 50
    CHANNEL_MESSAGES, CHANNEL_WINDOW = 5, 5.0

    def __init__(self, global_per_second: int = GLOBAL_PER_SECOND) -> None:
        super().__init__()
        self.global_per_second = global_per_second
        self._window = (0.0, 0)  # (window start, requests in it)
        self._channel_posts: dict[str, list[float]] = {}
        self.limited: Counter[str] = Counter()
        self.attempts: list[float] = []

    async def _limited(self, method: str, path: str) -> web.Response | None:
        now = time.monotonic()
        self.attempts.append(now)
        start, count = self._window
        if now - start >= 1.0:
            start, count = now, 0
        if count >= self.global_per_second:
            self.limited["global"] += 1
            retry = round(1.0 - (now - start), 3)
            return _json({"message": "You are being rate limited.", "retry_after": retry, "global": True}, 429, {
                "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global", "Retry-After": str(max(1, math.ceil(retry))),
                "Via": "1.1 google"})
        self._window = (start, count + 1)
        if method == "POST" and path.startswith("/channels/") and path.endswith("/messages"):
            channel = path.split("/")[2]
            recent = [t for t in self._channel_posts.get(channel, []) if now - t < self.CHANNEL_WINDOW]
            if len(recent) >= self.CHANNEL_MESSAGES:
                self.limited["channel"] += 1
                retry = round(self.CHANNEL_WINDOW - (now - recent[0]), 3)
                return _json({"message": "You are being rate limited.", "retry_after": retry, "global": False}, 429, {
                    **self._channel_headers(recent, now), "X-RateLimit-Scope": "user",
                    "Retry-After": str(max(1, math.ceil(retry))), "Via": "1.1 google"})
            self._channel_posts[channel] = [*recent, now]
        return await super()._limited(method, path)

    async def _create_message(self, request: web.Request, body: Any, channel_id: str) -> web.Response:
        response = await super()._create_message(request, body, channel_id)
        if response.status < 300:
            response.headers.update(self._channel_headers(self._channel_posts.get(channel_id, []), time.monotonic()))
        return response

    def _channel_headers(self, recent: list[float], now: float) -> dict[str, str]:
        """A channel's message bucket as Discord announces it; the bucket's name leaves the channel out, as Discord's does."""
        reset_after = round(self.CHANNEL_WINDOW - (now - recent[0]), 3) if recent else self.CHANNEL_WINDOW
        return {
            "X-RateLimit-Limit": str(self.CHANNEL_MESSAGES),
            "X-RateLimit-Remaining": str(max(0, self.CHANNEL_MESSAGES - len(recent))),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}", "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Bucket": "fake-create-message",
        }

    def prompts_by_channel(self, channels: list[int]) -> dict[int, int]:
        """How many prompts (bot posts that opened a thread) each channel holds."""
        return {c: sum(1 for m in self.bot_posts(c) if m.get("thread")) for c in channels}


async def seed_discord(settings: Settings, fake: LimitedDiscord, channels: list[int]) -> None:
    """Migrate, then store the guild's channels, all due this minute."""
    engine = db.create_engine(settings.database_url)
    now = datetime.now(UTC)
    due = now.time().replace(second=0, microsecond=0)
    try:
        await prepare_database(settings, engine)
        async with db.session_factory(engine)() as session, session.begin():
            guild = models.Workspace(platform="discord", external_id=str(fake.guild_id), created_at=now)
            session.add(guild)
            await session.flush()
            session.add_all(models.Channel(
                workspace_id=guild.id, external_id=str(channel), track=settings.default_track, post_time=due,
                timezone="UTC", weekdays=127, paused=False, created_at=now, updated_at=now) for channel in channels)
    finally:
        await engine.dispose()


async def measure_discord(url: str, folder: Path, channels: int, global_per_second: int, timeout: float) -> dict[str, Any]:
    fake = LimitedDiscord(global_per_second)
    async with fake:
        ids = fake.add_channels(channels)
        environment = bot_environment(url, free_port(), DISCORD_TOKEN=fake.token, DISCORD_API_URL=fake.api_url,
                                      DISCORD_GATEWAY_URL=fake.gateway_url, PREP_TICK_SECONDS="1")
        await seed_discord(Settings.from_env(environment), fake, ids)
        started = time.monotonic()
        async with running_bot(environment, folder, healthz=False) as bot:
            await fake.wait_for(lambda: fake.live is not None or bot.process.returncode is not None, 60, "the bot to log in")
            if bot.process.returncode is not None:
                raise RuntimeError(f"prepbot exited early:\n{bot.log.read_text()}")
            healthy = time.monotonic()  # logged in to the gateway: from here the posts can go
            deadline = healthy + timeout
            while sum(1 for n in fake.prompts_by_channel(ids).values() if n) < channels and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
            await asyncio.sleep(1.0)
        stored = await posted_in_database(url)
    counts = fake.prompts_by_channel(ids)
    threads = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/threads") and c.status < 300]
    posts = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/messages") and c.status < 300]
    first = min((c.at for c in posts), default=healthy)
    last = max((c.at for c in threads + posts), default=healthy)
    needed = 2 * channels  # a message and its thread for each channel
    floor = needed / global_per_second
    return {
        "channels": channels, "global_per_second": global_per_second, "posted_channels": sum(1 for n in counts.values() if n),
        "posted_twice": sum(1 for n in counts.values() if n > 1), "prompts_recorded": stored,
        "requests": len(fake.attempts), "rate_limited": dict(fake.limited),
        "busiest_second_requests": busiest_second(fake.attempts),
        "seconds_to_last_post": round(last - healthy, 2), "floor_seconds": round(floor, 2),
        "target_seconds": round(TARGET_FACTOR * floor + TARGET_SLACK_SECONDS, 2),
        "first_post_after_healthy_s": round(first - healthy, 2), "start_to_healthy_s": round(healthy - started, 2),
    }


def busiest_second(times: list[float]) -> int:
    """The most requests that arrived within any one second."""
    ordered, most, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def seed(settings: Settings, fake: LimitedSlack, channels: int, workspaces: int) -> dict[str, int]:
    """Migrate, then store the installations and the channels, all due this minute; channels per workspace."""
    engine = db.create_engine(settings.database_url)
    now = datetime.now(UTC)
    due = now.time().replace(second=0, microsecond=0)
    per_workspace: dict[str, int] = {}
    try:
        await prepare_database(settings, engine)
        sessions = db.session_factory(engine)
        store = SqlInstallationStore(sessions)
        rows = []
        for w in range(workspaces):
            team = f"T{w:05d}"
            bot = fake.add_workspace(team)
            await store.async_save(Installation(
                app_id=fake.app_id, team_id=team, bot_token=bot.bot_token, bot_id=bot.bot_id, bot_user_id=bot.bot_user_id,
                bot_scopes="chat:write,commands", user_id="UINSTALLER"))
            async with sessions() as session, session.begin():
                session.add(models.Workspace(platform="slack", external_id=team, created_at=now))
        async with sessions() as session:
            ids = dict((await session.execute(select(models.Workspace.external_id, models.Workspace.id))).all())
        for c in range(channels):
            team = f"T{c % workspaces:05d}"
            per_workspace[team] = per_workspace.get(team, 0) + 1
            rows.append({"workspace_id": ids[team], "external_id": f"C{c:06d}", "track": settings.default_track,
                         "post_time": due, "timezone": "UTC", "weekdays": 127, "paused": False,
                         "created_at": now, "updated_at": now})
        async with engine.begin() as connection:
            await connection.execute(insert(models.Channel), rows)
    finally:
        await engine.dispose()
    return per_workspace


async def posted_in_database(url: str) -> int:
    engine = db.create_engine(url)
    try:
        async with db.session_factory(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(models.Prompt).where(models.Prompt.status == "posted")) or 0)
    finally:
        await engine.dispose()


async def measure(url: str, folder: Path, channels: int, workspaces: int, burst: int, per_second: float, timeout: float) -> dict[str, Any]:
    fake = LimitedSlack(burst=burst, per_second=per_second)
    async with fake:
        environment = bot_environment(
            url, free_port(), SLACK_CLIENT_ID=fake.client_id, SLACK_CLIENT_SECRET=fake.client_secret,
            SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_STATE_SECRET="benchmark-state-secret", SLACK_API_URL=fake.api_url,
            PREP_TICK_SECONDS="1")
        settings = Settings.from_env(environment)
        per_workspace = await seed(settings, fake, channels, workspaces)
        started = time.monotonic()
        async with running_bot(environment, folder):
            healthy = time.monotonic()
            deadline = healthy + timeout
            while len(fake.posted_at) < channels and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # A moment more, to catch any second post to a channel that the run would otherwise miss.
            await asyncio.sleep(1.0)
        stored = await posted_in_database(url)
    times = sorted(t for posts in fake.posted_at.values() for t in posts)
    calls = fake.calls_to("chat.postMessage")
    first_call = min([c.at for c in calls] + fake.first_attempts, default=started)
    last = times[-1] if times else first_call
    busiest = max(per_workspace.values())
    floor = max(0.0, (busiest - burst) / per_second)
    return {
        "channels": channels, "workspaces": workspaces, "burst": burst, "per_second": per_second,
        "posted_channels": len(fake.posted_at), "posted_twice": sum(1 for p in fake.posted_at.values() if len(p) > 1),
        "prompts_recorded": stored, "posts_accepted": len(calls), "rate_limited": dict(fake.limited),
        # The tick runs as the process starts, so the clock starts when it answers its health check.
        "seconds_to_last_post": round(last - healthy, 2), "floor_seconds": round(floor, 2),
        "target_seconds": round(TARGET_FACTOR * floor + TARGET_SLACK_SECONDS, 2),
        "first_post_after_healthy_s": round(first_call - healthy, 2), "first_to_last_post_s": round(last - first_call, 2),
        "start_to_healthy_s": round(healthy - started, 2),
    }


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--platform", choices=("slack", "discord"), default="slack")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--small", action="store_true", help="CI size: 40 channels (Slack: in 2 workspaces, bursts of 5)")
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--workspaces", type=int, default=None)
    parser.add_argument("--burst", type=int, default=None, help="messages a workspace may send at once (20; 5 with --small)")
    parser.add_argument("--per-second", type=float, default=5.0, help="a workspace's sustained messages a second")
    parser.add_argument("--global-per-second", type=int, default=None,
                        help="Discord: requests a second the bot may make (50, Discord's limit; 20 with --small)")
    parser.add_argument("--timeout", type=float, default=None, help="give up waiting for posts after this long")
    args = parser.parse_args(argv)
    channels = args.channels or (40 if args.small else 1000)
    workspaces = args.workspaces or (2 if args.small else 20)
    burst = args.burst or (5 if args.small else 20)  # small: so that even a slow machine meets the limit
    with tempfile.TemporaryDirectory(prefix="prepbot-fanout-") as name:
        async with database(args.backend, Path(name), args.postgres_url) as url:
            if args.platform == "discord":
                figures = await measure_discord(url, Path(name), channels, args.global_per_second or (20 if args.small else 50),
                                                args.timeout or (60.0 if args.small else 300.0))
            else:
                figures = await measure(url, Path(name), channels, workspaces, burst, args.per_second,
                                        args.timeout or (60.0 if args.small else 300.0))
    complete = figures["posted_channels"] == channels and figures["posted_twice"] == 0 and figures["prompts_recorded"] == channels
    result = {
        "benchmark": "fanout", "platform": args.platform, "backend": args.backend, "small": args.small, **figures,
        "every_channel_once": complete,
        "target_met": complete and figures["seconds_to_last_post"] <= figures["target_seconds"],
        "machine": machine(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
