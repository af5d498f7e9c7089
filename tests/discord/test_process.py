"""`prepbot run` serving Discord: as a separate process, and alongside other adapters in one process."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sqlite3
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import pytest

from bot import app, db
from bot.core import PrepBot
from bot.events import CommandInvoked
from bot.fake_chat import FakeChat
from bot.ports import ChatPort
from bot.refs import ChannelRef, UserRef, WorkspaceRef
from bot.settings import Settings
from tests.conftest import FIXTURE_BANK
from tests.discord.conftest import KEYCAPS
from tests.fakes.discord import FakeDiscord, FakeInteraction
from tests.fakes.slack import wait_until

ROOT = Path(__file__).parent.parent.parent


def posts_recorded(database: Path) -> int:
    """How many prompts a running prepbot has recorded as posted, read from its SQLite file."""
    with contextlib.closing(sqlite3.connect(database, timeout=1)) as connection:
        return int(connection.execute("SELECT count(*) FROM prompts WHERE status = 'posted'").fetchone()[0])


async def answered(fake: FakeDiscord, interaction: FakeInteraction) -> str:
    return (await fake.answered(interaction, timeout=20)).reply_text()


async def test_prepbot_run_with_a_discord_token_runs_the_whole_loop_as_its_own_process(fake: FakeDiscord, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))},
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'prepbot.db'}",
        "DISCORD_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url, "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_MESSAGE_CONTENT": "true", "QUESTION_BANK_DIR": str(FIXTURE_BANK), "PREP_DEFAULT_TRACK": "mini",
        "PREP_TICK_SECONDS": "0.2", "LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await fake.wait_for(lambda: fake.global_commands and fake.live is not None or process.returncode is not None,
                            timeout=30, what="the process to sync its commands and identify")
        assert process.returncode is None, (await process.communicate())[1].decode()

        # Schedule the channel for a minute ago: the scheduler's next tick posts today's question.
        due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")
        reply = await answered(fake, await fake.invoke(fake.organizer, "prep", "setup", options={
            "time": due, "timezone": "UTC", "days": "daily"}))
        assert reply.startswith("Done."), reply
        prompts = await fake.wait_for(lambda: [m for m in fake.bot_posts() if m.get("thread")], timeout=20,
                                      what="the scheduled question and its thread")
        thread = int(prompts[0]["id"])
        # Answer once prepbot has recorded the post, as a member reading the question would: a reply
        # in the moment between Discord's answer and that record is not yet in a known thread.
        await wait_until(lambda: posts_recorded(tmp_path / "prepbot.db"), 20, "the post to be recorded")

        answer = await fake.post(fake.alice, thread, "Start from the backlog's age, not its size.")
        await fake.wait_for(lambda: fake.dms_to(fake.alice), timeout=20, what="the rubric sent to alice")
        await fake.react(fake.bob, thread, int(answer["id"]), KEYCAPS[5])
        await fake.react(fake.carol, thread, int(answer["id"]), KEYCAPS[4])

        async def rated() -> str:
            text = await answered(fake, await fake.invoke(fake.alice, "prep", "stats"))
            return text if "Ratings received: 2 (average 4.50)" in text else ""
        deadline = asyncio.get_running_loop().time() + 20
        while not (stats := await rated()):
            assert asyncio.get_running_loop().time() < deadline, "the ratings never arrived"
        assert "Answers given: 1" in stats
        drill = await answered(fake, await fake.invoke(fake.alice, "drill", channel_id=thread))
        assert "Follow-up 1 of" in drill
        board = await answered(fake, await fake.invoke(fake.bob, "prep", "leaderboard", options={"period": "week"}))
        assert f"1. <@{fake.alice.id}>" in board
        assert len([m for m in fake.bot_posts() if m.get("thread")]) == 1
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
        print(stderr.decode())  # shown by pytest when the test fails
    log = stderr.decode()
    assert process.returncode == 130, log  # Ctrl-C: stopped cleanly, as the CLI reports an interrupt
    assert "Traceback" not in log
    assert "synced 2 application commands (globally)" in log
    assert fake.token not in log


class StandIn:
    """A tiny adapter for the process tests: serves until told to fail."""

    platform = "standin"

    def __init__(self, chat: ChatPort) -> None:
        self._chat = chat
        self.fail = asyncio.Event()
        self.started = asyncio.Event()

    @property
    def port(self) -> ChatPort:
        return self._chat

    async def run(self, core: PrepBot) -> None:
        self.started.set()
        await self.fail.wait()
        raise RuntimeError("the stand-in platform went away")


def process_settings(fake: FakeDiscord, tmp_path: Path) -> Settings:
    from tests.discord.conftest import settings_for

    return settings_for(fake, database_url=f"sqlite+aiosqlite:///{tmp_path / 'prepbot.db'}", question_bank_dir=FIXTURE_BANK)


async def test_one_failing_adapter_stops_the_others_and_names_itself(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand_in = StandIn(FakeChat())
    real_build = app.build_adapter

    def build(platform: str, *args: object) -> app.Adapter:
        return stand_in if platform == "standin" else real_build(platform, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(app, "build_adapter", build)
    run = asyncio.create_task(app.run(process_settings(fake, tmp_path), ["discord", "standin"], io.StringIO(), io.StringIO()))
    await fake.wait_for(lambda: fake.live is not None and fake.live.socket is not None, what="Discord to connect")
    await stand_in.started.wait()
    stand_in.fail.set()
    with pytest.raises(app.AdapterFailed, match="the standin adapter stopped: the stand-in platform went away"):
        await asyncio.wait_for(run, 10)
    await fake.wait_for(lambda: fake.live is not None and fake.live.socket is None, what="the Discord connection to close")


async def test_discord_and_the_console_run_together_in_one_process_and_stop_together(fake: FakeDiscord, tmp_path: Path) -> None:
    read, write = os.pipe()
    stdin: TextIO = os.fdopen(read, "r")
    stdout = io.StringIO()
    run = asyncio.create_task(app.run(process_settings(fake, tmp_path), ["discord", "console"], stdin, stdout))
    try:
        await fake.wait_for(lambda: fake.live is not None and fake.live.socket is not None, what="Discord to connect")
        # Two hours ahead: not due, so only /prep now posts, whatever the time of day the test runs.
        later = (datetime.now(UTC) + timedelta(hours=2)).strftime("%H:%M")
        reply = await answered(fake, await fake.invoke(fake.organizer, "prep", "setup", options={"time": later, "timezone": "UTC"}))
        assert reply.startswith("Done."), reply
        now = await answered(fake, await fake.invoke(fake.organizer, "prep", "now"))
        assert now.startswith("Posted today's question"), now
        os.write(write, b"/prep stats\n")
        await fake.wait_for(lambda: "Your practice so far" in stdout.getvalue(), what="the console's reply")
    finally:
        os.close(write)  # end of input: the console stops, and the process with it
    await asyncio.wait_for(run, 10)
    stdin.close()
    assert "#practice · prepbot" in stdout.getvalue()
    await fake.wait_for(lambda: fake.live is not None and fake.live.socket is None, what="the Discord connection to close")


async def test_a_question_due_while_discord_is_unreachable_waits_for_the_login_and_posts_once(fake: FakeDiscord, tmp_path: Path) -> None:
    settings = replace(process_settings(fake, tmp_path), tick_seconds=0.1)
    engine = db.create_engine(settings.database_url)
    await app.prepare_database(settings, engine)
    # The channel was set up before this start, for a minute ago: the very first tick finds it due.
    offline = PrepBot(db.session_factory(engine), FakeChat(), default_track="mini")
    channel = ChannelRef(WorkspaceRef("discord", str(fake.guild_id)), str(fake.channel_id))
    due = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%H:%M")
    reply = await offline.handle(CommandInvoked("setup-before-start", datetime.now(UTC), channel,
                                                UserRef(channel.workspace, str(fake.organizer.id)), f"setup {due} UTC daily",
                                                user_is_admin=True))
    assert reply is not None and reply.message.plain_text().startswith("Done.")
    await engine.dispose()

    fake.unavailable = True  # Discord answers 503 until the first login attempt has failed
    run = asyncio.create_task(app.run(settings, ["discord"], io.StringIO(), io.StringIO()))
    try:
        await fake.wait_for(lambda: fake.calls_to("GET", "/users/@me"), what="a first login attempt")
        fake.unavailable = False
        posts = await fake.wait_for(lambda: [m for m in fake.bot_posts() if m.get("thread")], what="the due question")
        assert len(posts) == 1
        assert [c.status for c in fake.calls_to("POST", rf"/channels/{fake.channel_id}/messages")] == [200]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
