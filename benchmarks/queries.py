"""Benchmark: `/prep leaderboard` (week, month, all) and `/prep stats` at scale, on SQLite and PostgreSQL.

Builds a database through the project's migrations, fills it with `--ratings` ratings spread over
100 channels (one channel holding a tenth of them), then times the queries the commands run, each
in its own session as a command would. Prints one JSON line of figures.

    python -m benchmarks.queries --ratings 1000000 --backend sqlite
    python -m benchmarks.queries --ratings 1000000 --backend postgresql --postgres-url postgresql+asyncpg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time as clock_time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.common import DEFAULT_POSTGRES_URL, database, machine, percentile
from benchmarks.plans import explain, full_scans, indexes
from bot import db, models, progress

CHANNELS = 100
MEMBERS_PER_CHANNEL = 40
ANSWERS_PER_PROMPT = 15
RATINGS_PER_ANSWER = 18
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Dataset:
    big_channel: int
    busiest_member: int
    ratings: int
    answers: int


# The straightforward leaderboard, for the baseline: aggregate every rating that counts, joined to its
# answer and rater, as prepbot did before it kept per-answer tallies.
BASELINE_LEADERBOARD = text("""
SELECT a.member_id, count(*), sum(r.score)
FROM ratings r
JOIN answers a ON a.channel_id = r.channel_id AND a.message_id = r.message_id
JOIN members m ON m.id = r.rater_id
WHERE a.channel_id = :channel AND a.withdrawn_at IS NULL AND a.prompt_id IS NOT NULL
  AND a.member_id <> r.rater_id AND NOT m.is_bot
GROUP BY a.member_id
""")


def rows(total_ratings: int, seed: int = 7) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every row of the dataset as (table, values), parents before children."""
    rng = random.Random(seed)
    yield "workspaces", {"id": 1, "platform": "bench", "external_id": "W1", "created_at": NOW}
    member_ids = iter(range(1, 1 << 40))
    ids = {name: iter(range(1, 1 << 40)) for name in ("prompt", "answer", "rating", "question")}
    question = next(ids["question"])
    yield "questions", {
        "id": question, "track": "bench", "slug": "q", "text": "q", "category": "c", "pillars": [], "difficulty": 1,
        "kind": "situational", "follow_ups": [], "rubric": {}, "content_hash": "x", "retired_at": None,
        "created_at": NOW, "updated_at": NOW,
    }
    for channel in range(1, CHANNELS + 1):
        quota = total_ratings // 10 if channel == 1 else (total_ratings - total_ratings // 10) // (CHANNELS - 1)
        yield "channels", {
            "id": channel, "workspace_id": 1, "external_id": f"C{channel}", "track": "bench",
            "post_time": clock_time(9, 0), "timezone": "UTC", "weekdays": 127, "paused": False,
            "created_at": NOW, "updated_at": NOW,
        }
        members = [next(member_ids) for _ in range(MEMBERS_PER_CHANNEL)]
        for member in members:
            yield "members", {"id": member, "workspace_id": 1, "external_id": f"U{member}", "display_name": None,
                              "is_bot": False, "created_at": NOW}
        day = 0
        while quota > 0:
            local_date = (NOW - timedelta(days=day)).date()
            prompt = next(ids["prompt"])
            posted = datetime.combine(local_date, clock_time(9, 0), UTC)
            yield "prompts", {
                "id": prompt, "channel_id": channel, "local_date": local_date, "status": "posted",
                "question_id": question, "marker": uuid.uuid4().hex, "claim_token": "x", "claimed_at": posted,
                "message_id": f"p{prompt}", "posted_at": posted,
            }
            for author in rng.sample(members, ANSWERS_PER_PROMPT):
                if quota <= 0:
                    break
                answer = next(ids["answer"])
                answered_at = posted + timedelta(minutes=rng.randrange(1, 600))
                yield "answers", {
                    "id": answer, "channel_id": channel, "message_id": f"a{answer}", "prompt_id": prompt,
                    "member_id": author, "text": "an answer", "posted_at": answered_at, "text_changed_at": answered_at,
                    "withdrawn_at": None,
                }
                raters = rng.sample([m for m in members if m != author], min(RATINGS_PER_ANSWER, quota))
                for rater in raters:
                    yield "ratings", {
                        "id": next(ids["rating"]), "channel_id": channel, "message_id": f"a{answer}", "rater_id": rater,
                        "score": rng.choice((2, 3, 3, 4, 4, 4, 5, 5)), "rated_at": answered_at + timedelta(minutes=5),
                    }
                quota -= len(raters)
            day += 1


async def fill(engine: AsyncEngine, total_ratings: int) -> Dataset:
    """Load the dataset in large batches (COPY on PostgreSQL) and refresh the planner's statistics."""
    batches: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    authored: dict[int, int] = {}
    order = ["workspaces", "questions", "channels", "members", "prompts", "answers", "ratings"]

    async def flush(table: str) -> None:
        batch = batches.pop(table, [])
        if not batch:
            return
        if engine.dialect.name == "postgresql":
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
                columns = list(batch[0])
                records = [tuple(_pg_value(row[c]) for c in columns) for row in batch]
                await driver.copy_records_to_table(table, records=records, columns=columns)
        else:
            async with engine.begin() as connection:
                await connection.execute(insert(models.Base.metadata.tables[table]), batch)

    for table, values in rows(total_ratings):
        batches.setdefault(table, []).append(values)
        counts[table] = counts.get(table, 0) + 1
        if table == "answers" and values["channel_id"] == 1:
            authored[values["member_id"]] = authored.get(values["member_id"], 0) + 1
        if len(batches[table]) >= 50_000:
            for parent in order[: order.index(table) + 1]:
                await flush(parent)
    for table in order:
        await flush(table)
    # Steady state, as autovacuum leaves a live database: planner statistics, and on PostgreSQL
    # the visibility map that lets a covering index answer without visiting the table.
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    busiest = max(authored, key=lambda member: authored[member])
    return Dataset(big_channel=1, busiest_member=busiest, ratings=counts.get("ratings", 0), answers=counts.get("answers", 0))


def _pg_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


async def timed(sessions: async_sessionmaker[AsyncSession], query: Callable[[AsyncSession], Awaitable[object]], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        async with sessions() as session:
            await query(session)
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(samples), 3), "p99_ms": round(percentile(samples, 0.99), 3)}


async def measure(url: str, total_ratings: int, runs: int) -> dict[str, Any]:
    engine = db.create_engine(url)
    try:
        await db.upgrade(engine)
        started = time.perf_counter()
        data = await fill(engine, total_ratings)
        loaded = time.perf_counter() - started
        sessions = db.session_factory(engine)
        channel, member = data.big_channel, data.busiest_member
        queries: dict[str, Callable[[AsyncSession], Awaitable[object]]] = {
            "leaderboard_week": lambda s: progress.leaderboard(s, channel, NOW - timedelta(days=7)),
            "leaderboard_month": lambda s: progress.leaderboard(s, channel, NOW - timedelta(days=30)),
            "leaderboard_all": lambda s: progress.leaderboard(s, channel, None),
            "stats": lambda s: progress.member_stats(s, channel, member),
        }
        baseline: Callable[[AsyncSession], Awaitable[object]] = lambda s: s.execute(BASELINE_LEADERBOARD, {"channel": channel})
        for query in (*queries.values(), baseline):  # warm the caches once, as a running bot would be
            await timed(sessions, query, 3)
        figures: dict[str, Any] = {name: await timed(sessions, query, runs) for name, query in queries.items()}
        for name, query in queries.items():
            plans = await explain(engine, sessions, query, forbid_seqscan=False)
            figures[name]["indexes"] = indexes(plans)
            figures[name]["full_scans"] = sum(len(full_scans(plan)) for plan in plans)
        base = await timed(sessions, baseline, runs)
        figures["baseline_leaderboard_all_by_join"] = base
        figures["speedup_leaderboard_all_p50"] = round(base["p50_ms"] / figures["leaderboard_all"]["p50_ms"], 1)
        return {"ratings": data.ratings, "answers": data.answers, "load_seconds": round(loaded, 1), **figures}
    finally:
        await engine.dispose()


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--small", action="store_const", const=20_000, dest="ratings", help="20,000 ratings, as CI runs it")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--target-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        async with database(args.backend, Path(folder), args.postgres_url) as url:
            figures = await measure(url, args.ratings, args.runs)
    worst = max(figures[q]["p99_ms"] for q in ("leaderboard_week", "leaderboard_month", "leaderboard_all", "stats"))
    result = {
        "benchmark": "queries", "backend": args.backend, "runs": args.runs, **figures,
        "worst_p99_ms": worst, "target_p99_ms": args.target_ms, "target_met": worst <= args.target_ms,
        "machine": machine(),
    }
    print(json.dumps(result))
    return result

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
