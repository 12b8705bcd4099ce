"""Hot reload: a running gateway takes a changed config (a new key, a new candidate list)
while a slow request is in flight, which finishes on the old config; a broken config is
refused and the old one kept. In process (``POST /admin/reload`` and the reloader's
function) and through ``pointsman serve`` with SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway_harness import running
from pointsman.config import load_config
from pointsman.gateway.app import create_app
from pointsman.gateway.reload import Reloader, ReloadResult
from pointsman.testing.upstream import UpstreamStub

ADMIN = "admin-key-0001"
USER = "user-key-0001"
NEW = "new-key-0002"
SLOW_MS = 1500


def write(path: Path, stub: UpstreamStub, tmp_path: Path, *, candidates: list[str],
          keys: list[dict[str, Any]], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "router": {"candidates": candidates},
        "rules": [],
        "providers": {"endpoints": {"stub": {"kind": "openai", "base_url": stub.base_url}},
                      "deployments": {"gpt-4o-mini": [{"endpoint": "stub"}],
                                      "gpt-4.1": [{"endpoint": "stub"}]}},
        "gateway": {"request_log": {"sqlite_path": str(tmp_path / "requests.db")},
                    "keys": keys},
        "budgets": {"store": "memory"}, **extra}))
    return path


def keys(*extra: str) -> list[dict[str, Any]]:
    return [{"name": "admin", "key": ADMIN, "admin": True},
            {"name": "user", "key": USER}, *({"name": k[:3], "key": k} for k in extra)]


def ask(url: str, key: str, text: str = "hi") -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", timeout=30,
                      headers={"authorization": f"Bearer {key}"},
                      json={"model": "auto", "messages": [{"role": "user", "content": text}]})


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def slow_request(url: str, stub: UpstreamStub) -> Iterator[Future[httpx.Response]]:
    """A request to gpt-4o-mini that is at the upstream (and slow) when the block starts."""
    stub.behave("gpt-4o-mini", delay_ms=SLOW_MS)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(ask, url, USER, "slow one")
        wait_for(lambda: stub.requests("gpt-4o-mini") == 1, "the slow request")
        yield future


@pytest.fixture
def stub() -> Iterator[UpstreamStub]:
    with UpstreamStub() as s:
        yield s


def test_admin_reload_swaps_config_while_a_slow_request_finishes_on_the_old(
        tmp_path: Path, stub: UpstreamStub) -> None:
    config = write(tmp_path / "p.yaml", stub, tmp_path, candidates=["gpt-4o-mini"],
                   keys=keys())
    app = create_app(load_config(config))
    with running(app) as url:
        assert ask(url, NEW).status_code == 401
        with slow_request(url, stub) as slow:
            write(config, stub, tmp_path, candidates=["gpt-4.1"], keys=keys(NEW))
            assert httpx.post(f"{url}/admin/reload", timeout=30,
                              headers={"authorization": f"Bearer {USER}"}).status_code == 403
            r = httpx.post(f"{url}/admin/reload", timeout=30,
                           headers={"authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 200, r.text
            assert {"router", "gateway.keys"} <= set(r.json()["changed"])
            assert not slow.done()  # still in flight across the swap
            fresh = ask(url, NEW)
            assert fresh.status_code == 200 and fresh.json()["model"] == "gpt-4.1"
            old = slow.result()
        assert old.status_code == 200 and old.json()["model"] == "gpt-4o-mini"
        assert stub.requests("gpt-4o-mini") and stub.requests("gpt-4.1") == 1

        write(config, stub, tmp_path, candidates=["no-such-model"], keys=keys(NEW))
        r = httpx.post(f"{url}/admin/reload", timeout=30,
                       headers={"authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 422 and "no-such-model" in r.json()["message"]
        assert r.json()["reloaded"] is False
        kept = ask(url, NEW)
        assert kept.status_code == 200 and kept.json()["model"] == "gpt-4.1"
        assert app.state.reloader.reloads == 1


def test_reload_function_refuses_broken_configs_and_keeps_the_running_one(
        tmp_path: Path, stub: UpstreamStub) -> None:
    config = write(tmp_path / "p.yaml", stub, tmp_path, candidates=["gpt-4o-mini"],
                   keys=keys())
    app = create_app(load_config(config))
    reloader: Reloader = app.state.reloader
    with running(app) as url:
        def reload() -> ReloadResult:
            assert reloader.loop is not None
            return asyncio.run_coroutine_threadsafe(reloader.reload(), reloader.loop).result(30)

        before = app.state.gateway
        config.write_text("router: [unclosed\n")
        assert not reload().ok
        config.write_text(yaml.safe_dump({"router": {"candidates": ["gpt-4o-mini"],
                                                     "bogus": 1}}))
        refused = reload()
        assert not refused.ok and "router.bogus: unknown key" in refused.message
        write(config, stub, tmp_path, candidates=["gpt-4o-mini"], keys=[])
        assert "cannot open a gateway" in reload().message
        assert app.state.gateway is before and ask(url, USER).status_code == 200
        # a change that needs a restart is said, and the running value kept
        write(config, stub, tmp_path, candidates=["gpt-4o-mini"], keys=keys(),
              redis={"url": "redis://127.0.0.1:1/0"})
        done = reload()
        assert done.ok and done.restart_needed == ("redis",)
        assert app.state.gateway.config.redis == before.config.redis
        assert app.state.gateway.metrics is before.metrics
        assert app.state.gateway.drain is before.drain


def test_sighup_reloads_pointsman_serve(tmp_path: Path) -> None:
    with UpstreamStub() as stub:
        config = write(tmp_path / "serve.yaml", stub, tmp_path, candidates=["gpt-4o-mini"],
                       keys=keys())
        with serving(config) as (proc, url, stderr):
            with slow_request(url, stub) as slow:
                write(config, stub, tmp_path, candidates=["gpt-4.1"], keys=keys(NEW))
                proc.send_signal(signal.SIGHUP)
                wait_for(lambda: any("reloaded" in line for line in stderr), "the reload")
                assert not slow.done()
                fresh = ask(url, NEW)
                assert fresh.status_code == 200 and fresh.json()["model"] == "gpt-4.1"
                old = slow.result()
            assert old.status_code == 200 and old.json()["model"] == "gpt-4o-mini"
            config.write_text("router: {candidates: []}\n")
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: any("refused" in line for line in stderr), "the refusal")
            assert ask(url, NEW).json()["model"] == "gpt-4.1"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        refusal = next(line for line in stderr if "refused" in line)
        assert "router.candidates" in refusal and "Traceback" not in "".join(stderr)


@contextmanager
def serving(config: Path) -> Iterator[tuple[subprocess.Popen[str], str, list[str]]]:
    """``pointsman serve`` as a process: it, its URL and its stderr lines (read live)."""
    proc = subprocess.Popen([sys.executable, "-m", "pointsman", "serve", "--workers", "1",
                             "--config",
                             str(config), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        first = proc.stdout.readline()
        assert "listening on" in first, first + "".join(lines)
        url = first.split("listening on ")[1].split()[0]
        wait_for(lambda: _healthy(url), "the gateway")
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(10)
        proc.stdout.close()
        proc.stderr.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health").status_code == 200
    except httpx.TransportError:
        return False
