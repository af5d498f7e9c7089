"""A scripted console session, piped into `prepbot run` as a separate process, runs the whole loop."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import FIXTURE_BANK

ROOT = Path(__file__).parent.parent.parent


async def run_console(tmp_path: Path, script: str, *, extra_env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
        "QUESTION_BANK_DIR": str(FIXTURE_BANK),
        "PREP_DEFAULT_TRACK": "mini",
        **(extra_env or {}),
    }
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_TOKEN", "SLACK_CLIENT_ID"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(script.encode()), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


SCRIPT = """\
/prep setup 09:00 Europe/Berlin daily mini
/as alice
I would start by sizing the problem with the last 90 days of reports.
/as bob
First I'd define what 'good' looks like with Policy.
/as carol
I'd ship a manual workflow first, then automate the obvious cases.
/react 1 4
/react 1 5
/unreact 1 5
/react 2 3
/as bob
/react 1 5
/react 1 5
/react 3 2
/as alice
/react 2 4
/react 1 5
/prep leaderboard all
/drill
/drill
/prep stats
/react 9 4
/react 1 7
/prep setup 25:99 Mars/Olympus
/quit
"""


async def test_a_piped_session_runs_setup_post_answers_ratings_leaderboard_drills_and_stats(tmp_path: Path) -> None:
    code, out, err = await run_console(tmp_path, SCRIPT)
    assert code == 0, err
    assert "Question of the day" in out
    assert "alice answered (#1)" in out and "bob answered (#2)" in out and "carol answered (#3)" in out
    board = out.split("Leaderboard · all time", 1)[1].split("Ranked by", 1)[0]
    # alice: carol's 4 (her 5 taken back) and bob's 5 → 4.5 from 2; her self-rating is ignored.
    # Scores are Bayesian: five imaginary 3s first, so (5·3 + 4 + 5) / 7 = 3.43.
    assert "@alice — 3.43 (avg 4.50 from 2 ratings, 1 answer)" in board
    assert "@bob — 3.14 (avg 3.50 from 2 ratings, 1 answer)" in board  # carol's 3 and alice's 4
    assert "@carol — 2.83 (avg 2.00 from 1 rating, 1 answer)" in board
    assert board.index("@alice") < board.index("@bob") < board.index("@carol")
    follow_ups = [line for line in out.splitlines() if "Follow-up" in line]
    assert len(follow_ups) == 2 and "Follow-up 1 of 3" in follow_ups[0] and "Follow-up 2 of 3" in follow_ups[1]
    assert follow_ups[0].split(": ", 1)[1] != follow_ups[1].split(": ", 1)[1]
    stats = out.split("Your practice so far", 1)[1]
    assert "Answers given: 1" in stats and "Ratings received: 2 (average 4.50)" in stats and "Ratings given: 1" in stats  # her self-rating does not count
    assert "Drills taken: 2" in stats and "Current streak: 1 question in a row" in stats
    assert "! there is no answer #9" in out
    assert "! '7' is not a rating: use 1, 2, 3, 4 or 5" in out
    assert "`25:99` is not a time of day" in out and "`Mars/Olympus` is not an IANA time zone" in out


async def test_a_restarted_console_shows_the_current_question_instead_of_posting_another(tmp_path: Path) -> None:
    await run_console(tmp_path, "/quit\n")
    code, out, err = await run_console(tmp_path, "an answer after the restart\n/answers\n")
    assert code == 0, err
    assert "(the current question)" in out and "Posted today's question" not in out
    assert "you answered (#1)" in out


async def test_the_console_documents_its_commands_and_refuses_unknown_ones(tmp_path: Path) -> None:
    code, out, _ = await run_console(tmp_path, "/help\n/dance\n/as\n/edit 1\n")
    assert code == 0
    assert "/react <n> <1-5>" in out and "/drill [topic]" in out
    assert "! /dance is not a console command" in out
    assert "! usage: /as <name>" in out
    assert "! there is no answer #1" in out


async def test_a_broken_bank_stops_start_up_with_every_problem_named_and_the_database_untouched(tmp_path: Path) -> None:
    broken = tmp_path / "bank"
    broken.mkdir()
    (broken / "mini.toml").write_text((FIXTURE_BANK / "mini.toml").read_text().replace("difficulty = 1", "difficulty = 9"))
    code, out, err = await run_console(tmp_path, "", extra_env={"QUESTION_BANK_DIR": str(broken)})
    assert code == 2
    assert "question strategy-q1: difficulty: must be 1, 2 or 3, got 9" in err and "Nothing was changed." in err
    assert not (tmp_path / "console.db").exists() or (tmp_path / "console.db").stat().st_size == 0


async def test_sigterm_stops_a_running_bot_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'console.db'}",
           "QUESTION_BANK_DIR": str(FIXTURE_BANK), "PREP_DEFAULT_TRACK": "mini"}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DISCORD_TOKEN", "SLACK_CLIENT_ID"):
        env.pop(name, None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    # Its input stays open, so only the signal can stop it; wait until it has posted the question.
    seen = b""
    while b"Question of the day" not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        assert line, "the console ended before posting"
        seen += line
    process.terminate()
    # Its input is still open: a reader blocked on it must not hold the process up.
    await asyncio.wait_for(process.wait(), timeout=30)
    assert process.stderr is not None
    err = await process.stderr.read()
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
