"""Pure translation: keycap emoji, embeds within Discord's limits, command text and thread names."""

from __future__ import annotations

import discord
import pytest

from adapters.discord import translate
from bot.messages import Bullets, Context, Fields, Header, Message, Text


@pytest.mark.parametrize(("name", "expected"), [
    ("1\ufe0f\u20e3", "one"), ("5\ufe0f\u20e3", "five"), ("3\u20e3", "three"),  # with and without the variation selector
    ("6\ufe0f\u20e3", None), ("👍", None), ("#\ufe0f\u20e3", None),
])
def test_only_the_keycaps_one_to_five_are_ratings(name: str, expected: str | None) -> None:
    assert translate.rating_name(discord.PartialEmoji.from_dict({"id": None, "name": name})) == expected


def test_a_custom_emoji_named_like_a_keycap_is_not_a_rating() -> None:
    assert translate.rating_name(discord.PartialEmoji.from_dict({"id": "123", "name": "1\ufe0f\u20e3"})) is None


def test_a_message_renders_as_an_embed_within_discords_limits_and_keeps_the_marker() -> None:
    message = Message.of(
        Header("H" * 300), Text("t" * 5000), Bullets(("a", "b")),
        Fields(tuple((f"label {n}", "v" * 2000) for n in range(30))), Context("c" * 3000))
    embed = translate.render(message, marker="pb0123456789abcdef01")
    assert len(embed.title or "") == 256 and len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25 and all(len(f.value or "") <= 1024 for f in embed.fields)
    assert embed.footer.text is not None and len(embed.footer.text) <= 2048
    assert embed.footer.text.endswith("prepbot:pb0123456789abcdef01")
    assert len(embed) <= 6000  # Discord's cap on an embed's characters in total


def test_a_short_message_keeps_every_part() -> None:
    embed = translate.render(Message.of(Header("Stats"), Text("Body"), Fields((("Answers", "3"),)), Context("note")))
    assert (embed.title, embed.description, embed.footer.text) == ("Stats", "Body", "note")
    assert [(f.name, f.value) for f in embed.fields] == [("Answers", "3")]


def test_command_text_is_positional_and_skips_empty_options() -> None:
    assert translate.command_text("setup", ["09:30", "Europe/Berlin", None, " "]) == "setup 09:30 Europe/Berlin"
    assert translate.command_text("leaderboard", [None]) == "leaderboard"


def test_the_thread_is_named_after_the_prompts_header() -> None:
    assert translate.thread_name(Message.of(Header("Question of the day · Data"), Text("…"))) == "Question of the day · Data"
    assert translate.thread_name(Message.of(Context("only small print"))) == "Answers"
