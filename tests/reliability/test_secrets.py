"""Secrets never reach a log, a repr or the terminal: platform tokens, signing and OAuth secrets, the database password."""

from __future__ import annotations

import io
import logging
import secrets
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bot import app, db
from bot.cli import main
from bot.core import PrepBot
from bot.fake_chat import FakeChat
from bot.settings import Settings
from tests.builders import Session
from tests.conftest import FIXTURE_BANK, FakeClock


def secret_env() -> dict[str, str]:
    """Token-like values for every secret setting, each unique so a leak is unmistakable."""
    mark = secrets.token_hex(6)
    return {
        "SLACK_BOT_TOKEN": f"xoxb-1111-2222-bot{mark}",
        "SLACK_SIGNING_SECRET": f"signing{mark}",
        "SLACK_APP_TOKEN": f"xapp-1-A111-app{mark}",
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": f"client{mark}",
        "SLACK_STATE_SECRET": f"state{mark}",
        "DISCORD_TOKEN": f"MTEx.discord.{mark}",
    }


SECRET_NAMES = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_SECRET", "SLACK_STATE_SECRET", "DISCORD_TOKEN")


def with_password(url: str) -> tuple[str, str]:
    """`url` with a database password (the test PostgreSQL trusts local users, so any password works)."""
    password = f"dbpass{secrets.token_hex(6)}"
    if url.startswith("sqlite"):
        return url, password  # SQLite has no password; the value simply must not appear either
    return make_url(url).set(password=password).render_as_string(hide_password=False), password


def leaks(text: str, values: list[str]) -> list[str]:
    return [value for value in values if value in text]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the log records hold: formatted messages, raw arguments and tracebacks."""
    parts = []
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
    return "\n".join(parts) + caplog.text


def test_settings_read_from_the_environment_hide_every_secret_in_their_repr() -> None:
    env = secret_env()
    url, password = with_password("postgresql+asyncpg://prepbot@127.0.0.1:5432/prepbot")
    settings = Settings.from_env({**env, "DATABASE_URL": url})
    assert settings.slack_bot_token == env["SLACK_BOT_TOKEN"] and settings.database_url == url  # read, not dropped
    secrets_ = [env[name] for name in SECRET_NAMES] + [password]
    assert leaks(repr(settings), secrets_) == []
    assert leaks(str(settings), secrets_) == []


async def test_a_full_session_at_debug_level_logs_no_secret(
    database_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # every statement with its parameters, too
    env = secret_env()
    url, password = with_password(database_url)
    settings = Settings.from_env({**env, "DATABASE_URL": url, "QUESTION_BANK_DIR": str(FIXTURE_BANK), "PREP_DEFAULT_TRACK": "mini"})
    engine = db.create_engine(settings.database_url)
    try:
        await app.prepare_database(settings, engine)
        chat = FakeChat()
        core = PrepBot(db.session_factory(engine), chat, organizers=settings.organizers, default_track="mini", clock=clock)
        members = Session(core, chat, clock)
        await members.setup()
        thread = await members.post_now()
        first = await members.answer("alice", "my answer", thread)
        await members.answer("bob", "x" * 20_000, thread)  # refused, with a note
        await members.react("bob", first, "four")
        await members.react("bob", first, "five")
        await members.unreact("bob", first, "five")
        await members.edit(first, "my answer, revised")
        await members.drill("alice", thread=thread)
        await members.command("stats", who="alice")
        await members.command("leaderboard all", who="bob")
        await members.command("setup 25:99 Mars/Olympus", admin=True)
        chat.fail_next(ConnectionError("the platform hung up"))  # the failure path logs a traceback
        clock.advance(days=1, hours=2)
        await core.tick()
        clock.advance(minutes=5)
        await core.tick()  # takes the stale claim over and reconciles
    finally:
        await engine.dispose()
    loggers = {record.name for record in caplog.records}
    assert {"sqlalchemy.engine.Engine", "bot.posting"} <= loggers, loggers  # statements and the failed send were logged
    assert leaks(logged(caplog), [env[name] for name in SECRET_NAMES] + [password]) == []


def test_prepbot_run_with_every_secret_set_logs_and_prints_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    env = secret_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'secrets.db'}")
    monkeypatch.setenv("QUESTION_BANK_DIR", str(FIXTURE_BANK))
    monkeypatch.setenv("PREP_DEFAULT_TRACK", "mini")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO("an answer\n/react 1 4\n/drill\n/prep stats\n/prep setup 25:99 Nowhere\n/tick\n/quit\n"))
    assert main(["run", "--platform", "console"]) == 0
    out = capsys.readouterr()
    assert "Question of the day" in out.out  # the session really ran
    values = [env[name] for name in SECRET_NAMES]
    assert leaks(out.out + out.err, values) == []
    assert leaks(logged(caplog), values) == []


def test_the_check_would_see_a_leaked_token(caplog: pytest.LogCaptureFixture) -> None:
    token = secret_env()["SLACK_BOT_TOKEN"]
    caplog.set_level(logging.DEBUG)
    logging.getLogger("bot.example").debug("calling with %s", {"token": token})
    assert leaks(logged(caplog), [token]) == [token]

