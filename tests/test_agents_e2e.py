"""Real coding agents end to end, offline: Claude Code (``claude -p``, Anthropic Messages
door ``POST /v1/messages``) and Codex CLI (``codex exec``, OpenAI Responses door
``POST /v1/responses``) → the gateway (uvicorn on 127.0.0.1:0, a gateway key with a
budget, the SQLite request log) → the upstream stub.

The agents are installed by ``scripts/install-agents.sh`` into a cache outside the
repository; without node or without them these tests skip and say so. Each agent runs in
a temporary home with everything but the model call switched off (telemetry, updates,
plugin sync), so the gateway is the only host it talks to; a process-group kill bounds
every run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from budget_gateway_support import logged, write_config
from gateway_harness import running
from pointsman.gateway.app import create_app
from pointsman.testing.upstream import UpstreamStub

AGENTS_DIR = Path(os.environ.get("POINTSMAN_AGENTS_DIR")
                  or Path.home() / ".cache" / "pointsman" / "agents")
AGENT_TIMEOUT_S = 180  # a cold agent start on a loaded machine is slow; a hang is not
ANSWER = "Relayed through pointsman by the upstream stub"
AGENT_KEY = "sk-agent-0123456789"
ADMIN_KEY = "sk-ops-0123456789"
KEYS = [{"key": AGENT_KEY, "name": "agent", "user": "dev"},
        {"key": ADMIN_KEY, "name": "ops", "admin": True}]
BUDGET_USD = 5.0

pytestmark = pytest.mark.timeout(AGENT_TIMEOUT_S + 120)


@dataclass(frozen=True)
class AgentRun:
    """What one agent run left behind: its output, the log rows and the spend report."""

    returncode: int
    stdout: str
    stderr: str
    rows: list[dict[str, Any]]
    spend: dict[str, Any]

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def agent_binary(name: str) -> Path:
    """The installed agent's executable, or a skip naming the reason and the fix."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH; the agent tests need Node.js 20+ and npm "
                    "(then run scripts/install-agents.sh)")
    path = AGENTS_DIR / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in {AGENTS_DIR}; run scripts/install-agents.sh")
    return path


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing of the developer's keys, base URLs or config leaks in."""
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "LANG": "C.UTF-8", "NO_COLOR": "1"}
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def run_bounded(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run an agent in its own process group; past the timeout kill the whole group (the
    agents start helpers) and fail with what it had printed."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=AGENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        finished = proc.poll() is not None  # only a helper still held the pipes open
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = drain(proc)
        if finished:
            return proc.returncode, out, err
        pytest.fail(f"{argv[0]} did not finish in {AGENT_TIMEOUT_S} s\n--- stdout\n{out}\n"
                    f"--- stderr\n{err}")
    with contextlib.suppress(ProcessLookupError):  # helpers left behind by a finished agent
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, err


def drain(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """The output of a killed agent; a helper that left its process group and still holds
    the pipes loses it rather than hanging the test."""
    try:
        return proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()
        return "(lost: a helper outside the process group held the pipes)", ""


def through_gateway(stub: UpstreamStub, tmp_path: Path,
                    launch: Callable[[str, Path], tuple[list[str], dict[str, str]]]
                    ) -> AgentRun:
    """Serve the gateway over the stub, run the agent that ``launch`` describes (given the
    gateway's URL and a scratch directory), then read the spend report and the log."""
    stub.behave("*", text=ANSWER)
    cfg = write_config(tmp_path, stub, {"store": "memory", "limits": [
        {"scope": "key", "limit_usd": BUDGET_USD}]}, keys=KEYS)
    workdir = tmp_path / "work"
    workdir.mkdir()
    with running(create_app(cfg)) as url:
        argv, env = launch(url, tmp_path)
        code, out, err = run_bounded(argv, env, workdir)
        spend = httpx.get(f"{url}/v1/spend", params={"key": "agent"},
                          headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()
    return AgentRun(code, out, err, logged(tmp_path / "requests.db"), spend)


def check_served(run: AgentRun, door: str) -> None:
    """One streamed request through ``door``, answered by the stub, costed and charged to
    the agent's key."""
    assert run.returncode == 0, run.explain()
    assert ANSWER in run.stdout, run.explain()
    assert len(run.rows) == 1, [(r["requested_model"], r["outcome"], r["error"])
                                for r in run.rows]
    [row] = run.rows
    record = json.loads(row["record"])
    assert record.get("door") == door, f"the request log's record has door={record.get('door')!r}"
    assert row["outcome"] == "ok" and row["requested_model"] == "auto", row
    assert row["stream"] == 1 and row["key"] == "agent" and row["user"] == "dev", row
    assert row["cost_usd"] > 0, row
    assert run.spend["spent_usd"] == pytest.approx(row["cost_usd"], abs=1e-9), run.spend
    assert run.spend["budget_usd"] == BUDGET_USD
    assert run.spend["remaining_usd"] == pytest.approx(BUDGET_USD - row["cost_usd"], abs=1e-9)


@pytest.mark.parametrize("auth", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_claude_code_through_the_messages_door(upstream: UpstreamStub, tmp_path: Path,
                                               auth: str) -> None:
    """``claude -p`` with ANTHROPIC_BASE_URL at the gateway: the key as ``x-api-key``
    (ANTHROPIC_API_KEY) or as ``Authorization: Bearer`` (ANTHROPIC_AUTH_TOKEN)."""
    claude = agent_binary("claude")

    def launch(url: str, scratch: Path) -> tuple[list[str], dict[str, str]]:
        env = base_env(scratch / "home") | {
            "ANTHROPIC_BASE_URL": url, auth: AGENT_KEY,
            "CLAUDE_CONFIG_DIR": str(scratch / "home" / ".claude"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # no telemetry, updates, probes
            "CLAUDE_CODE_MAX_RETRIES": "0"}  # a failure shows at once, not after backoff
        return [str(claude), "-p", "say hi", "--model", "auto"], env

    check_served(through_gateway(upstream, tmp_path, launch), "messages")


CODEX_CONFIG = """\
model_provider = "pointsman"
model = "auto"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[model_providers.pointsman]
name = "pointsman"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "POINTSMAN_KEY"
request_max_retries = 0
stream_max_retries = 0

[features]
plugins = false

[analytics]
enabled = false
"""


def test_codex_through_the_responses_door(upstream: UpstreamStub, tmp_path: Path) -> None:
    """``codex exec`` with a ``pointsman`` model provider (Responses wire API) in a
    temporary CODEX_HOME; read-only sandbox, no approvals, no session files."""
    codex = agent_binary("codex")

    def launch(url: str, scratch: Path) -> tuple[list[str], dict[str, str]]:
        codex_home = scratch / "home" / ".codex"
        codex_home.mkdir(parents=True)
        (codex_home / "config.toml").write_text(CODEX_CONFIG.format(url=url))
        env = base_env(scratch / "home") | {"CODEX_HOME": str(codex_home),
                                            "POINTSMAN_KEY": AGENT_KEY}
        return [str(codex), "exec", "--skip-git-repo-check", "--ephemeral", "--strict-config",
                "--color", "never", "say hi"], env

    check_served(through_gateway(upstream, tmp_path, launch), "responses")
