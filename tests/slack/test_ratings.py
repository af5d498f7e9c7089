"""Rating reactions from Slack: `one` … `five`, skin tones, bots, self-ratings, removals and withdrawn answers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.slack.conftest import CHANNEL, OTHER_BOT, Slack


@pytest.fixture
async def answered(slack: Slack) -> tuple[str, dict[str, Any]]:
    await slack.setup()
    prompt_ts = await slack.post_prompt()
    return prompt_ts, await slack.answer(prompt_ts, "UALICE")


async def test_each_rating_name_gives_its_score(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    for rater, name in zip(("UBOB", "UCAROL", "UDAN"), ("one", "three", "five"), strict=True):
        await slack.react(rater, name, alice)
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 1, (alice["ts"], "UCAROL"): 3, (alice["ts"], "UDAN"): 5}


async def test_removing_the_latest_reaction_restores_the_earlier_rating(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    await slack.react("UBOB", "four", alice)
    await slack.react("UBOB", "five", alice)
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 5}
    await slack.react("UBOB", "five", alice, removed=True)
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 4}
    await slack.react("UBOB", "four", alice, removed=True)
    assert await slack.ratings() == {}


async def test_a_skin_tone_suffix_is_stripped(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    await slack.react("UBOB", "two::skin-tone-5", alice)
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 2}
    await slack.react("UBOB", "two::skin-tone-5", alice, removed=True)
    assert await slack.ratings() == {}


async def test_a_reaction_without_item_user_still_counts(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    event = slack.payloads.reaction("reaction_added", "UBOB", "four", CHANNEL, alice["ts"])
    assert "item_user" not in event
    assert (await slack.event(event)).status == 200
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 4}


async def test_other_emoji_do_not_rate(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    for name in ("thumbsup", "+1", "keycap_ten", "five-ish", "100"):
        assert (await slack.react("UBOB", name, alice)).status == 200
    assert await slack.ratings() == {}


async def test_rating_your_own_answer_does_not_count(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    await slack.react("UALICE", "five", alice)
    assert await slack.ratings() == {}


async def test_a_bot_rating_does_not_count_once_slack_says_it_is_a_bot(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    _, alice = answered
    await slack.react(OTHER_BOT, "five", alice)
    await slack.react("UBOB", "three", alice)
    assert await slack.ratings() == {(alice["ts"], "UBOB"): 3}
    assert [c.args["user"] for c in slack.fake.calls_to("users.info")].count(OTHER_BOT) == 1


async def test_reactions_on_the_question_itself_rate_nothing(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    prompt_ts, _ = answered
    await slack.event(slack.payloads.reaction("reaction_added", "UBOB", "five", CHANNEL, prompt_ts, slack.fake.bot_user_id))
    assert await slack.ratings() == {}


async def test_deleting_an_answer_takes_its_ratings_out_of_the_tally(slack: Slack, answered: tuple[str, dict[str, Any]]) -> None:
    prompt_ts, alice = answered
    bob = await slack.answer(prompt_ts, "UBOB")
    await slack.react("UBOB", "five", alice)
    await slack.react("UALICE", "four", bob)
    await slack.event(slack.payloads.deleted(alice))
    assert await slack.ratings() == {(bob["ts"], "UALICE"): 4}
    board = await slack.command("leaderboard all", "UCAROL")
    assert "<@UBOB>" in board and "<@UALICE>" not in board
