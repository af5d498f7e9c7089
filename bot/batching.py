"""Group commit: many events applied in one transaction, so one durable commit serves them all.

Each caller waits for the commit of the batch that holds its event, so nothing is acknowledged
before it is on disk. There is no timer: while one batch commits, the next one gathers, so a
quiet bot commits each event at once and a busy one commits tens together. If an event fails,
its batch is rolled back and replayed one event per transaction (each retried when the database
broke a deadlock by rolling it back), so the others still land and only the failing caller sees
the error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from bot.db import Transactions

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 256


class GroupCommitter(Generic[Item, Result]):
    """Applies submitted items with `apply(session, items)` in shared transactions, in submission order.

    `apply` gets the whole batch, so that what every item needs can be done once for all of them
    (e.g. one inbox insert), and returns one result per item, in their order. It is sync code, so
    that a whole batch is one call into `transactions` (on SQLite, one hand-off to a worker thread)
    rather than a round trip through the event loop per statement.
    """

    def __init__(
        self, transactions: Transactions, apply: Callable[[Session, Sequence[Item]], Sequence[Result]],
        *, max_batch: int = MAX_BATCH, retryable: Callable[[BaseException], bool] = lambda _: False, attempts: int = 1,
    ) -> None:
        self._transactions = transactions
        self._apply = apply
        self._max_batch = max_batch
        self._retryable = retryable
        self._attempts = attempts
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Apply `item` and return its result once the transaction holding it has committed.

        A caller that gives up (a dropped request) cancels only its own wait: the batch belongs to
        the writer task, which sets no result on a future already cancelled.
        """
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="group-commit")
        return await future

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch:]
            items = [item for item, _ in batch]
            try:
                results = await self._transactions.run(lambda session: self._apply(session, items))
            except Exception:
                logger.debug("a batch of %d failed; applying its items one by one", len(batch), exc_info=True)
                await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        for item, future in batch:
            try:
                result = await self._alone(item)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)

    async def _alone(self, item: Item) -> Result:
        [result] = await retrying(
            lambda: self._transactions.run(lambda session: self._apply(session, [item])),
            retryable=self._retryable, attempts=self._attempts)
        return result


async def retrying(
    transaction: Callable[[], Awaitable[Result]], *, retryable: Callable[[BaseException], bool], attempts: int,
) -> Result:
    """Run `transaction`, again if the database rolled it back to break a deadlock."""
    for attempt in range(1, attempts + 1):
        try:
            return await transaction()
        except Exception as error:
            if attempt == attempts or not retryable(error):
                raise
            logger.info("a transaction was rolled back (%s); running it again", error)
    raise AssertionError("attempts must be at least 1")
