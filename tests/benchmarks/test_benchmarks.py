"""Every benchmark at its small size: it runs from a clean checkout and its own correctness checks hold.

The performance targets are for the record (BENCHMARKS.md), not asserted here: a shared CI machine
cannot promise them. What must always hold is asserted: nothing acknowledged is lost, the tallies
are exactly what the events imply, every channel is posted exactly once whatever the 429s.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import migrations
from benchmarks import ackpath, fanout, memory, queries
from tests.conftest import POSTGRES_URL


async def test_the_ack_path_benchmark_loses_nothing_and_gets_every_tally_right() -> None:
    figures = await ackpath.main(["--small"])
    assert figures["steps"] and all(step["failed"] == 0 for step in figures["steps"]), figures["steps"]
    assert figures["lost"] == 0 and figures["inbox_events"] == figures["events"] and figures["never_acknowledged"] == 0
    assert figures["tallies_checked"] > 0 and figures["tallies_wrong"] == 0, figures["wrong_examples"]
    assert figures["baseline_tallies_wrong"] == 0 and figures["baseline_sqlite3_tx_per_s"] > 0


async def test_the_ack_path_benchmark_delivers_again_what_was_not_acknowledged_as_slack_would() -> None:
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
                seen.append(head)
                if b"X-Slack-Retry-Num: 2" not in head:
                    break  # the first delivery and the first retry go unanswered
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sender = ackpath.Sender(server.sockets[0].getsockname()[1])
    events = [ackpath.Sent("reaction_added", f"Ev{n}", {"event_id": f"Ev{n}"}) for n in range(3)]
    try:
        step, failed = await ackpath.run_step(sender, events, 100)
        assert step["failed"] == 3 and failed == events
        assert await ackpath.redeliver(sender, failed) == []
    finally:
        sender.close()
        server.close()
    retries = [head for head in seen if b"X-Slack-Retry-Num" in head]
    assert len(seen) == 9 and len(retries) == 6 and all(b"X-Slack-Retry-Reason: http_error" in head for head in retries)


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
