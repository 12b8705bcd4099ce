"""One timer for a stream's reads (providers/http.py ``StreamReads``): the first-token limit
until the first byte, the total after it, a caller's own cancellation left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pointsman.errors import UpstreamTimeoutError
from pointsman.providers.base import Timeouts
from pointsman.providers.http import Deadline, StreamReads


async def after(delay: float, data: bytes = b"x") -> AsyncIterator[bytes]:
    await asyncio.sleep(delay)
    yield data


async def never() -> AsyncIterator[bytes]:
    await asyncio.Event().wait()
    yield b""


def reads(first_token: float, total: float) -> StreamReads:
    return StreamReads(Deadline(Timeouts(1.0, first_token, total), "m", streaming=True))


def test_no_first_byte_in_time_is_a_first_token_timeout() -> None:
    async def main() -> None:
        stream = reads(0.05, 30.0)
        with pytest.raises(UpstreamTimeoutError, match=r"first-token timeout of 0\.05s"):
            await stream.read(never())
        stream.stop()
    asyncio.run(main())


def test_after_the_first_byte_the_total_applies() -> None:
    async def main() -> None:
        stream = reads(0.05, 30.0)
        assert await stream.read(after(0.0)) == b"x"
        stream.first_byte()
        assert await stream.read(after(0.2, b"y")) == b"y"  # past the first-token limit
        stream.stop()
        later = reads(0.05, 0.1)
        later.first_byte()
        with pytest.raises(UpstreamTimeoutError, match=r"total timeout of 0\.1s"):
            await later.read(never())
    asyncio.run(main())


def test_a_limit_passed_between_reads_fails_the_next_read_at_once() -> None:
    async def main() -> None:
        stream = reads(0.01, 30.0)
        await asyncio.sleep(0.1)  # the consumer is busy elsewhere when the timer fires
        chunks = after(0.0)
        with pytest.raises(UpstreamTimeoutError, match="first-token"):
            await stream.read(chunks)
        assert await anext(chunks) == b"x"  # nothing was read from the stream
    asyncio.run(main())


def test_the_end_of_the_body_reads_as_none() -> None:
    async def main() -> None:
        stream, chunks = reads(5.0, 30.0), after(0.0)
        assert await stream.read(chunks) == b"x"
        assert await stream.read(chunks) is None
        stream.stop()
    asyncio.run(main())


def test_a_callers_cancellation_stays_a_cancellation() -> None:
    async def main() -> None:
        stream = reads(30.0, 60.0)
        task = asyncio.get_running_loop().create_task(stream.read(never()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stream.stop()
    asyncio.run(main())
