"""The Discord settings: the message-content switch, the development guild and the shard count."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError


@pytest.mark.parametrize(("raw", "expected"), [("", False), ("false", False), ("0", False), ("true", True), ("YES", True), ("1", True)])
def test_the_message_content_switch_reads_true_and_false(raw: str, expected: bool) -> None:
    assert Settings.from_env({"DISCORD_MESSAGE_CONTENT": raw}).discord_message_content is expected


def test_a_message_content_switch_that_is_neither_true_nor_false_is_named() -> None:
    with pytest.raises(SettingsError, match="DISCORD_MESSAGE_CONTENT must be true or false, got 'maybe'"):
        Settings.from_env({"DISCORD_MESSAGE_CONTENT": "maybe"})


def test_a_development_guild_must_be_a_server_id() -> None:
    assert Settings.from_env({"DISCORD_DEV_GUILD": "123456789012345678"}).discord_dev_guild == "123456789012345678"
    with pytest.raises(SettingsError, match="DISCORD_DEV_GUILD must be a server id"):
        Settings.from_env({"DISCORD_DEV_GUILD": "my-test-server"})


def test_the_shard_count_is_a_number_and_unset_means_one_connection() -> None:
    assert Settings.from_env({}).discord_shard_count is None
    assert Settings.from_env({"DISCORD_SHARD_COUNT": "4"}).discord_shard_count == 4
    with pytest.raises(SettingsError, match="DISCORD_SHARD_COUNT must be a number"):
        Settings.from_env({"DISCORD_SHARD_COUNT": "many"})
