"""The write path shared by the request log stores: a queue drained by a background task.

``write`` only appends to an in-process queue and returns; one asyncio task takes
batches of up to ``batch_size`` records and hands them to the store's ``_write_batch``.
A failing batch is retried with capped backoff and never dropped; ``flush`` waits until
everything queued so far is written; ``aclose`` flushes (bounded by ``close_timeout_s``,
after which it raises naming how many records are still unwritten) and closes.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence

from pointsman.errors import StoreUnavailableError
from pointsman.requestlog import RequestRecord

log = logging.getLogger("pointsman.requestlog")
LINGER_S = 0.005


class BatchingRequestLog(ABC):
    def __init__(self, batch_size: int = 500, close_timeout_s: float = 10.0) -> None:
        self.batch_size = batch_size
        self.close_timeout_s = close_timeout_s
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.written = 0

    @abstractmethod
    async def _write_batch(self, batch: Sequence[RequestRecord]) -> None:
        """Write records durably; raise :class:`StoreUnavailableError` on failure."""

    async def _close_store(self) -> None:
        return None

    async def write(self, record: RequestRecord) -> None:
        if self._closed:
            raise StoreUnavailableError("the request log is closed")
        self._queue.put_nowait(record)
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="pointsman-requestlog")

    async def flush(self) -> None:
        await self._queue.join()

    async def aclose(self) -> None:
        self._closed = True
        try:
            await asyncio.wait_for(self.flush(), self.close_timeout_s)
        except TimeoutError:
            raise StoreUnavailableError(
                f"request log: {self._queue.qsize()} records queued and not written after "
                f"{self.close_timeout_s}s") from None
        finally:
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            await self._close_store()

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # let the answer that queued this record go out first, and more records gather:
            # the write (a worker thread on the same core) then stays off requests' latency
            await asyncio.sleep(LINGER_S)
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_with_retry(batch)
            for _ in batch:
                self._queue.task_done()

    async def _write_with_retry(self, batch: Sequence[RequestRecord]) -> None:
        delay = 0.05
        while True:
            try:
                await self._write_batch(batch)
            except StoreUnavailableError as exc:
                log.error("request log write of %d records failed, retrying in %.2fs: %s",
                          len(batch), delay, exc.message)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
                continue
            self.written += len(batch)
            return
