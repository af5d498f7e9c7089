"""Platform requests made again after an unknown outcome, waiting twice as long before each new attempt."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def again_after_unknown(
    call: Callable[[], Awaitable[T]], what: str, *, unknown: Callable[[BaseException], bool], attempts: int,
    retry_seconds: float, describe: Callable[[BaseException], str] = lambda error: type(error).__name__,
) -> T:
    """`call()`, made again (up to `attempts` in all) while it fails in a way `unknown` says may or may not have taken effect.

    Only for requests that are safe to repeat; any other failure, and the last attempt's, is raised.
    """
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(retry_seconds * 2 ** (attempt - 1))
        try:
            return await call()
        except Exception as error:
            if not unknown(error) or attempt == attempts - 1:
                raise
            logger.warning("%s met %s; trying again", what, describe(error))
    raise AssertionError("attempts must be at least 1")
