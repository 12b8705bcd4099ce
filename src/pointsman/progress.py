"""Progress on standard error for long work (the static table build, embedding many
prompts, ``train``, ``eval``): a rich bar on a terminal, one line when piped, so a run
that takes minutes never sits silent."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[int], None]
_live: list[object] = []  # rich allows one live display at a time: inner work stays quiet


@contextmanager
def progress(total: int, label: str, *, announce: bool = False) -> Iterator[Advance]:
    """Yield ``advance(n)``; ``announce`` also prints ``label`` when there is no terminal."""
    tty = sys.stderr is not None and sys.stderr.isatty()
    if not tty or _live:
        if announce:
            print(f"pointsman: {label}", file=sys.stderr, flush=True)
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total or None)
        _live.append(bar)
        try:
            yield lambda n: bar.advance(task, n)
        finally:
            _live.pop()
