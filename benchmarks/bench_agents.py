"""What agent-aware routing adds to a decision: alias resolution and session affinity.

Run: taskset -c 0 .venv/bin/python benchmarks/bench_agents.py [--iterations N]

Four timings of the same request (a short coding-agent turn) on the built-in config, each
the whole step the gateway runs per request, interleaved so drift hits all alike:
- ``auto``: the affinity source (no session: nothing to look up) and ``Router.decide``;
- ``alias``: the name resolved through the alias table (``claude-opus-5-5``, a cached
  lookup) and the decision among the alias's candidates;
- ``affinity``: the session's previous turn read from the memory store, put into the live
  state, and the decision weighing staying against moving;
- ``both``.
Target (issue 14): alias resolution and affinity lookup add <= 20 µs to a decision (p50).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time

from pointsman.affinity import AffinityConfig, AffinitySource, MemoryAffinity, session_key
from pointsman.aliases import Alias, AliasTable
from pointsman.config import load_config
from pointsman.router import Router
from pointsman.types import LiveState, Message, RouteRequest

TURN = ("Now refactor the parser module so that the tokenizer is a generator, keep the "
        "public API, and update the unit tests accordingly.")


def requests() -> tuple[RouteRequest, RouteRequest]:
    messages = (Message("system", "You are a coding agent. " * 40), Message("user", TURN))
    plain = RouteRequest(messages=messages, tools_count=12, metadata={"key": "k"})
    session = RouteRequest(messages=messages, tools_count=12,
                           metadata={"key": "k", "session": "s-1"})
    return plain, session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    args = parser.parse_args()
    cfg = load_config()
    router = Router(cfg)
    table = AliasTable(cfg.aliases, cfg.passthrough, router.catalog, router.candidates,
                       list(cfg.providers.endpoints))
    store = MemoryAffinity(AffinityConfig())
    source = AffinitySource(store)
    plain, session = requests()
    key = session_key(session)
    assert key is not None
    first = router.decide(plain)
    asyncio.run(store.put(key, first.model, 900))
    print(asyncio.run(run(router, table, source, plain, session, args.iterations)))


async def run(router: Router, table: AliasTable, source: AffinitySource,
              plain: RouteRequest, session: RouteRequest, iterations: int) -> str:
    async def step(request: RouteRequest, name: str) -> None:
        state = await source.contribute(request, LiveState())
        found = table.lookup(name) if name != "auto" else None
        router.decide(request, state, alias=found if isinstance(found, Alias) else None)

    cases = {"auto": (plain, "auto"), "alias": (plain, "claude-opus-5-5"),
             "affinity": (session, "auto"), "both": (session, "claude-opus-5-5")}
    timings: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(2_000):  # warm up
        for request, name in cases.values():
            await step(request, name)
    gc.disable()
    for _ in range(iterations):
        for label, (request, name) in cases.items():
            start = time.perf_counter_ns()
            await step(request, name)
            timings[label].append((time.perf_counter_ns() - start) / 1000.0)
    gc.enable()
    p50 = {label: statistics.median(values) for label, values in timings.items()}
    lines = [f"{label:9} p50 {p50[label]:6.1f} µs  (+{p50[label] - p50['auto']:5.1f} µs)"
             for label in cases]
    decided = router.decide(session, await source.contribute(session, LiveState()))
    lines.append(f"the affinity decision: {decided.model}: {decided.reason}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
