"""Every benchmark at its small size: it runs from a clean checkout and its own correctness checks hold.

The performance targets are for the record (BENCHMARKS.md), not asserted here: a shared CI machine
cannot promise them. What must always hold is asserted: nothing acknowledged is lost, the tallies
are exactly what the events imply, every channel is posted exactly once whatever the 429s.
"""

from __future__ import annotations

import pytest

import migrations
from benchmarks import ackpath, fanout, memory, queries
from tests.conftest import POSTGRES_URL


async def test_the_ack_path_benchmark_loses_nothing_and_gets_every_tally_right() -> None:
    figures = await ackpath.main(["--small"])
    assert figures["steps"] and all(step["failed"] == 0 for step in figures["steps"]), figures["steps"]
    assert figures["lost"] == 0 and figures["inbox_events"] == figures["events"]
    assert figures["tallies_checked"] > 0 and figures["tallies_wrong"] == 0, figures["wrong_examples"]
    assert figures["baseline_tallies_wrong"] == 0 and figures["baseline_sqlite3_tx_per_s"] > 0


@pytest.mark.postgres
async def test_the_ack_path_benchmark_runs_on_postgresql(postgres_available: str | None) -> None:
    if postgres_available is not None:
        pytest.skip(postgres_available)
    figures = await ackpath.main(["--small", "--backend", "postgresql", "--postgres-url", POSTGRES_URL, "--rates", "100"])
    assert figures["lost"] == 0 and figures["tallies_wrong"] == 0, figures["wrong_examples"]


async def test_the_fan_out_benchmark_posts_every_channel_once_through_the_rate_limits() -> None:
    figures = await fanout.main(["--small"])
    assert figures["posted_channels"] == figures["channels"] and figures["posted_twice"] == 0
    assert figures["prompts_recorded"] == figures["channels"]
    assert figures["rate_limited"].get("workspace", 0) > 0, "the run met the workspace limit, and retried past it"


async def test_the_discord_fan_out_benchmark_posts_every_channel_once_through_the_global_limit() -> None:
    figures = await fanout.main(["--small", "--platform", "discord"])
    assert figures["posted_channels"] == figures["channels"] and figures["posted_twice"] == 0
    assert figures["prompts_recorded"] == figures["channels"]
    assert figures["rate_limited"].get("global", 0) > 0, "the run met the global limit, and retried past it"


async def test_the_memory_benchmark_reads_the_memory_of_a_bot_serving_both_platforms() -> None:
    figures = await memory.main(["--small"])
    assert figures["slack_channels"] > 0 and figures["discord_channels"] > 0
    assert figures["posted_channels"] == figures["prompts_recorded"] == figures["channels"]
    assert 0 < figures["rss_after_start_mb"] <= figures["rss_after_tick_mb"] * 2
    assert figures["rss_peak_mb"] >= max(figures["rss_after_start_mb"], figures["rss_after_tick_mb"])


async def test_the_memory_benchmark_can_start_the_bot_behind_head_so_that_it_migrates_first() -> None:
    figures = await memory.main(["--small", "--migrate-at-start"])
    assert figures["database_at_start"] != migrations.HEAD
    assert figures["posted_channels"] == figures["prompts_recorded"] == figures["channels"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_the_queries_benchmark_reads_through_indexes_on_both_databases(backend: str, postgres_available: str | None) -> None:
    if backend == "postgresql" and postgres_available is not None:
        pytest.skip(postgres_available)
    figures = await queries.main(["--small", "--runs", "5", "--backend", backend, "--postgres-url", POSTGRES_URL])
    assert figures["ratings"] > 19_000
    for query in ("leaderboard_week", "leaderboard_month", "leaderboard_all", "stats"):
        assert figures[query]["full_scans"] == 0 and figures[query]["indexes"], (query, figures[query])
