"""The composition root: read settings, build the engine, bank, core and adapters, run them together."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import bank, db
from bot.core import PrepBot, utc_now
from bot.ports import ChatPort, ChatRouter
from bot.scheduler import TickScheduler
from bot.settings import Settings

logger = logging.getLogger(__name__)

PLATFORMS = ("slack", "discord", "console")
GIL_SWITCH_SECONDS = 0.0005


class Adapter(Protocol):
    """A platform adapter: a `ChatPort` for the core, and a `run` that serves the platform until stopped."""

    platform: str

    @property
    def port(self) -> ChatPort: ...

    async def run(self, core: PrepBot) -> None: ...


class StartupError(Exception):
    """prepbot cannot start; the message says why and what to change."""


class AdapterFailed(StartupError):
    """One adapter stopped with an error; the others were stopped with it."""


async def serve(core: PrepBot, adapters: Sequence[Adapter]) -> None:
    """Run every adapter until the first one stops, then stop the others.

    A `TaskGroup` alone would keep serving when one adapter finishes normally (the console at end
    of input), so the first one to stop, for whatever reason, ends them all.
    """
    tasks = {asyncio.create_task(adapter.run(core), name=f"adapter-{adapter.platform}"): adapter for adapter in adapters}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and (error := task.exception()) is not None:
            platform = tasks[task].platform
            logger.error("the %s adapter failed; stopping prepbot", platform, exc_info=error)
            raise AdapterFailed(f"the {platform} adapter stopped: {error}") from error


async def prepare_database(settings: Settings, engine: AsyncEngine) -> bank.SyncReport:
    """Migrate to head and sync the question bank; a bad bank changes nothing."""
    tracks = bank.load_bank(settings.question_bank_dir)
    await db.upgrade(engine)
    sessions = db.session_factory(engine)
    async with sessions() as session, session.begin():
        await db.hold_startup_lock(session)
        report = await bank.sync(session, tracks, utc_now())
    logger.info("question bank synced: %s added, %s updated, %s retired, %s unchanged",
                report.added, report.updated, report.retired, report.unchanged)
    return report


def choose_platforms(settings: Settings, requested: str | None) -> list[str]:
    if requested is not None:
        if requested == "slack" and not settings.slack_configured:
            raise StartupError("--platform slack needs SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode).")
        if requested == "discord" and not settings.discord_configured:
            raise StartupError("--platform discord needs DISCORD_TOKEN.")
        return [requested]
    chosen = [p for p, on in (("slack", settings.slack_configured), ("discord", settings.discord_configured)) if on]
    return chosen or ["console"]


def build_adapter(
    platform: str, settings: Settings, sessions: async_sessionmaker[AsyncSession], stdin: TextIO, stdout: TextIO,
) -> Adapter:
    # Imported here so that a process serving one platform never loads the others' libraries.
    if platform == "console":
        from adapters.console import ConsoleAdapter

        return ConsoleAdapter(stdin, stdout)
    if platform == "slack":
        from adapters.slack import SlackAdapter

        return SlackAdapter(settings, sessions)
    if platform == "discord":
        from adapters.discord import DiscordAdapter

        return DiscordAdapter(settings, sessions)
    raise StartupError(f"unknown platform {platform!r}; choose one of {', '.join(PLATFORMS)}")


def slack_manifest(socket_mode: bool, request_url: str | None, *, name: str = "prepbot") -> dict[str, object]:
    """The Slack app manifest for `prepbot slack manifest` (see `adapters.slack.manifest`)."""
    from adapters.slack.manifest import build_manifest

    return build_manifest(socket_mode, request_url, name=name)


async def discord_invite(settings: Settings, application_id: str | None) -> tuple[str, str]:
    """The link that adds the Discord bot to a server, and what each permission in it is for."""
    from adapters.discord import invite

    if application_id is not None and not application_id.isdigit():
        raise StartupError(f"--application-id must be a number, got {application_id!r}")
    if application_id is None:
        if not settings.discord_token:
            raise StartupError("pass --application-id, or set DISCORD_TOKEN so prepbot can ask Discord for it.")
        try:
            application_id = await invite.application_id(settings.discord_token, settings.discord_api_url)
        except invite.InviteError as error:
            raise StartupError(str(error)) from error
    return invite.invite_url(application_id), invite.explain()


async def run(settings: Settings, platforms: Sequence[str], stdin: TextIO, stdout: TextIO) -> None:
    """Serve the given platforms until one adapter stops (the console at end of input) or we are cancelled."""
    # The event loop shares the GIL with the thread that applies batches of events (`db.InAThread`);
    # at Python's default 5 ms switch interval, each batch held every acknowledgement back that long.
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    engine = db.create_engine(settings.database_url)
    scheduler: TickScheduler | None = None
    try:
        await prepare_database(settings, engine)
        sessions = db.session_factory(engine)
        adapters = [build_adapter(platform, settings, sessions, stdin, stdout) for platform in platforms]
        router = ChatRouter({adapter.platform: adapter.port for adapter in adapters})
        core = PrepBot(
            sessions, router, organizers=settings.organizers, lateness=settings.lateness,
            default_track=settings.default_track,
        )
        scheduler = TickScheduler(core, settings.tick_seconds)
        scheduler.start()
        await serve(core, adapters)
    finally:
        if scheduler is not None:
            await scheduler.shutdown()
        await engine.dispose()
