"""Intents, refused credentials, back-off when Discord is unreachable, and the invite link."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlparse

import discord
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.discord import DiscordAdapter
from adapters.discord.adapter import DiscordRefused
from adapters.discord.invite import REQUIRED_PERMISSIONS
from bot.cli import main
from bot.core import PrepBot
from tests.discord.conftest import CLIENT_OPTIONS, Bot, poll, settings_for
from tests.fakes.discord import MESSAGE_CONTENT_INTENT, FakeDiscord


@pytest.mark.parametrize("message_content", [False])
async def test_without_the_message_content_intent_answers_are_recorded_without_their_text(bot: Bot) -> None:
    fake = bot.fake
    assert not int(fake.identifies[0]["intents"]) & MESSAGE_CONTENT_INTENT
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    message = await bot.answer(fake.alice, thread, "Words the bot never sees.")
    row = await bot.answer_row(message["id"])
    assert row is not None and row.text is None
    await fake.edit(thread, int(message["id"]), "Edited words.")
    await bot.settle()
    assert (await bot.answer_row(message["id"])).text is None  # type: ignore[union-attr]
    assert "Answers given: 1" in await bot.command(fake.alice, "stats")
    assert "Message Content intent" in await bot.command(fake.alice, "help")


@pytest.mark.parametrize("message_content", [True])
async def test_with_the_message_content_intent_answer_text_is_kept_and_help_does_not_ask_for_it(bot: Bot) -> None:
    fake = bot.fake
    assert int(fake.identifies[0]["intents"]) & MESSAGE_CONTENT_INTENT
    assert int(fake.identifies[0]["intents"]) == discord.Intents(guilds=True, guild_messages=True, guild_reactions=True,
                                                                 message_content=True).value
    await bot.setup_channel()
    thread = int((await bot.post_prompt())["id"])
    message = await bot.answer(fake.alice, thread, "Words the bot keeps.")
    assert (await bot.answer_row(message["id"])).text == "Words the bot keeps."  # type: ignore[union-attr]
    assert "Message Content intent" not in await bot.command(fake.alice, "help")


def adapter_for(fake: FakeDiscord, **settings: Any) -> DiscordAdapter:
    return DiscordAdapter(settings_for(fake, **settings), first_retry_seconds=0.05, max_retry_seconds=0.4,
                          client_options=CLIENT_OPTIONS)


async def serve(adapter: DiscordAdapter, sessions: async_sessionmaker[AsyncSession]) -> None:
    await adapter.run(PrepBot(sessions, adapter.port, default_track="mini"))


async def test_an_intent_not_enabled_in_the_developer_portal_stops_the_adapter_with_what_to_change(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with FakeDiscord(allow_message_content=False) as fake:
        adapter = adapter_for(fake, discord_message_content=True)
        with pytest.raises(DiscordRefused, match="DISCORD_MESSAGE_CONTENT=false"):
            await asyncio.wait_for(serve(adapter, sessions), 10)
        assert len(fake.identifies) == 1


async def test_a_refused_token_stops_the_adapter_after_one_login(fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession]) -> None:
    fake.refuse_logins = True
    adapter = adapter_for(fake)
    with pytest.raises(DiscordRefused, match="check DISCORD_TOKEN"):
        await asyncio.wait_for(serve(adapter, sessions), 10)
    assert len(fake.calls_to("GET", "/users/@me")) == 1 and not fake.identifies


async def test_when_discord_is_unavailable_logins_back_off_and_the_bot_connects_once_it_is_back(
    fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake.unavailable = True
    adapter = adapter_for(fake)
    task = asyncio.create_task(serve(adapter, sessions))
    try:
        await fake.wait_for(lambda: len(fake.calls_to("GET", "/users/@me")) >= 5, what="five login attempts")
        times = [c.at for c in fake.calls_to("GET", "/users/@me")][:5]
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2 and gaps[3] >= 0.4, gaps
        fake.unavailable = False
        await poll(lambda: _ready(adapter), what="the client to connect")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_connection_that_keeps_failing_right_after_ready_backs_off_too(
    fake: FakeDiscord, sessions: async_sessionmaker[AsyncSession],
) -> None:
    fake.close_after_ready = (0.2, 4013)  # a gateway close discord.py does not resume from
    adapter = DiscordAdapter(settings_for(fake), first_retry_seconds=0.1, max_retry_seconds=2.0, stable_seconds=60,
                             client_options=CLIENT_OPTIONS)
    task = asyncio.create_task(serve(adapter, sessions))
    try:
        await fake.wait_for(lambda: len(fake.calls_to("GET", "/users/@me")) >= 5, timeout=20, what="five connections")
        times = [c.at for c in fake.calls_to("GET", "/users/@me")][:5]
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        # The waits grew (0.1, 0.2, 0.4, 0.8 s) though every connection got READY. Each gap is its
        # connection's 0.2 s, its wait, and the time to connect, which only a loaded machine stretches:
        # so the later gaps are at least their waits, which a wait that did not grow would not reach.
        assert gaps[2] >= 0.95 * (0.2 + 0.4) and gaps[3] >= 0.95 * (0.2 + 0.8), gaps
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _ready(adapter: DiscordAdapter) -> bool:
    return adapter.client is not None and adapter.client.became_ready


def test_the_invite_url_asks_for_the_two_scopes_and_exactly_the_needed_permissions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["discord", "invite-url", "--application-id", "1234567890"]) == 0
    out = capsys.readouterr()
    query = parse_qs(urlparse(out.out.strip()).query)
    assert query["client_id"] == ["1234567890"]
    assert query["scope"] == ["bot applications.commands"]
    permissions = discord.Permissions(int(query["permissions"][0]))
    assert permissions == REQUIRED_PERMISSIONS
    # Bits from Discord's permission table: view channel, send messages, embed links, read message history,
    # create public threads, send messages in threads; nothing else.
    assert permissions.value == (1 << 10) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 35) | (1 << 38)
    assert "create public threads: open a thread on each daily question" in out.err


async def test_the_invite_url_finds_the_application_id_with_the_bot_token(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", fake.token)
    monkeypatch.setenv("DISCORD_API_URL", fake.api_url)
    # main() runs its own event loop, so it runs in a thread while the fake serves on this one.
    assert await asyncio.to_thread(main, ["discord", "invite-url"]) == 0
    assert f"client_id={fake.application_id}&" in capsys.readouterr().out
    monkeypatch.setenv("DISCORD_TOKEN", "not-the-token")
    assert await asyncio.to_thread(main, ["discord", "invite-url"]) == 2
    assert "Discord refused DISCORD_TOKEN (401 Unauthorized)" in capsys.readouterr().err


async def test_prepbot_run_with_a_wrong_token_stops_with_a_clear_error(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str,
) -> None:
    for name, value in {"DISCORD_TOKEN": "not-the-token", "DISCORD_API_URL": fake.api_url,
                        "DISCORD_GATEWAY_URL": fake.gateway_url, "DATABASE_URL": database_url}.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["run", "--platform", "discord"]) == 2
    err = capsys.readouterr().err
    assert "prepbot: the discord adapter stopped: Discord refused the bot token (401 Unauthorized): check DISCORD_TOKEN" in err
    assert "not-the-token" not in err


def test_the_invite_url_without_an_id_or_a_token_says_what_to_pass(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["discord", "invite-url"]) == 2
    assert "pass --application-id, or set DISCORD_TOKEN" in capsys.readouterr().err
    assert main(["discord", "invite-url", "--application-id", "prepbot"]) == 2
    assert "--application-id must be a number, got 'prepbot'" in capsys.readouterr().err
