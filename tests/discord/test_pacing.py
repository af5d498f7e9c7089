"""The token bucket that keeps the Discord port under the global limit, on a clock the test moves."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from adapters.discord.pacing import REQUEST_BURST, REQUESTS_PER_SECOND, TokenBucket
from bot.posting import MAX_CONCURRENT_POSTS, SEND_TIMEOUT

SETTLE_TURNS = 20  # loop turns for every woken waiter to take its token or go back to sleep


class FakeTime:
    """A monotonic clock and its `sleep`: time moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def run_for(self, seconds: float) -> None:
        """Let `seconds` pass with the loop running freely: each sleeper wakes at its own time."""
        until = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= until:
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            if not future.done():
                future.set_result(None)
            await settle()
        self.now = until
        await settle()

    async def stall(self, seconds: float) -> None:
        """The loop is blocked for `seconds`: nobody wakes until it is over, then every overdue sleeper does."""
        self.now += seconds
        await self.run_for(0.0)


async def settle() -> None:
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)


class Requests:
    """Requests that each take one token from `bucket` and note when they got it."""

    def __init__(self, bucket: TokenBucket, time: FakeTime) -> None:
        self.bucket, self.time = bucket, time
        self.granted: dict[int, float] = {}

    def start(self, count: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._one(n)) for n in range(count)]

    async def _one(self, n: int) -> None:
        async with self.bucket:
            self.granted[n] = self.time.now

    def times(self) -> list[float]:
        return sorted(self.granted.values())


def most_in_one_second(times: list[float]) -> int:
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def test_requests_beyond_the_burst_go_at_the_steady_rate_in_the_order_they_came() -> None:
    time = FakeTime()
    requests = Requests(TokenBucket(REQUESTS_PER_SECOND, REQUEST_BURST, clock=time, sleep=time.sleep), time)
    requests.start(200)
    await time.run_for(10.0)
    times = requests.times()
    assert len(times) == 200
    assert times[:REQUEST_BURST] == [0.0] * REQUEST_BURST
    gaps = [later - earlier for earlier, later in itertools.pairwise(times[REQUEST_BURST - 1:])]
    assert gaps == pytest.approx([1 / REQUESTS_PER_SECOND] * len(gaps))
    assert [n for n, _ in sorted(requests.granted.items(), key=lambda item: item[1])] == list(range(200))
    assert most_in_one_second(times) <= REQUESTS_PER_SECOND + REQUEST_BURST < 50


async def test_after_the_loop_stalls_the_waiting_requests_go_no_faster_than_the_bucket_allows() -> None:
    time = FakeTime()
    requests = Requests(TokenBucket(REQUESTS_PER_SECOND, REQUEST_BURST, clock=time, sleep=time.sleep), time)
    requests.start(300)
    await time.run_for(1.0)
    before = len(requests.granted)
    await time.stall(5.0)  # slots reserved ahead would all be overdue now: 225 requests at once
    at_once = [t for t in requests.times() if t == time.now]
    assert len(at_once) == REQUEST_BURST
    assert len(requests.granted) == before + REQUEST_BURST
    await time.run_for(10.0)
    assert len(requests.granted) == 300
    assert most_in_one_second(requests.times()) <= REQUESTS_PER_SECOND + REQUEST_BURST


async def test_requests_cancelled_while_waiting_leave_no_gap_for_the_others() -> None:
    time = FakeTime()
    requests = Requests(TokenBucket(10.0, 1, clock=time, sleep=time.sleep), time)
    tasks = requests.start(10)
    await settle()
    assert requests.granted == {0: 0.0}  # 1 now sleeps for its token, 2 to 9 wait their turn behind it
    await time.run_for(0.05)
    for n in (1, 3, 4):  # the one halfway through its wait, and two still in line
        tasks[n].cancel()
    await time.run_for(1.0)
    survivors = [0, 2, 5, 6, 7, 8, 9]
    assert sorted(requests.granted) == survivors
    assert [requests.granted[n] for n in survivors] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert all(tasks[n].cancelled() for n in (1, 3, 4))


def test_a_bucket_needs_a_rate_and_room_for_a_token() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0.0, 1)
    with pytest.raises(ValueError):
        TokenBucket(45.0, 0)


def test_a_ticks_posts_wait_for_their_turn_far_inside_the_send_timeout() -> None:
    # The send timeout counts a post's wait for its turn, which keeps a live sender inside its claim;
    # so the most a tick queues at once (its posts, two requests each) must be through in seconds.
    assert 2 * MAX_CONCURRENT_POSTS / REQUESTS_PER_SECOND < SEND_TIMEOUT.total_seconds() / 5
