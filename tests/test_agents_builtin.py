"""Claude Code and Codex CLI through ``pointsman serve`` with the built-in config (no
config file): the model names the agents send by default are answered (the built-in
``aliases`` route them like ``auto``), and the two turns of one agent session carry the
same session and land on one model.

The gateway runs as a user runs it, in a scratch directory (its request log is the
default ``pointsman-requests.db`` there); the environment points the built-in endpoints
(openai, anthropic, google) at the upstream stub and gives them dummy keys. The agents'
helpers (temporary homes, bounded runs, skips without node or the agents) are those of
tests/test_agents_e2e.py.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from budget_gateway_support import logged
from pointsman.providers.config import env_base_url_var
from pointsman.testing.upstream import UpstreamStub
from test_agents_e2e import (
    AGENT_TIMEOUT_S,
    ANSWER,
    CODEX_CONFIG,
    agent_binary,
    base_env,
    run_bounded,
)
from test_serve_cli import serving

pytestmark = pytest.mark.timeout(2 * AGENT_TIMEOUT_S + 180)

AGENT_KEY = "sk-any-client-key"  # an open gateway (no gateway.keys) takes any key
# Two turns as hard as each other: the router's own choice is the same model, so the test
# does not depend on how much the stub's (word-counted) prompt cache is worth.
FIRST = ("Analyze the trade-offs and design an algorithm step by step: implement a "
         "concurrent, lock-free hash map in Rust with a proof of correctness and a time "
         "complexity analysis.")
SECOND = ("Continue: prove the lock-free hash map correct step by step, analyze the time "
          "complexity and design trade-offs, and implement its concurrent resize algorithm "
          "in Rust.")
Launch = Callable[[str, Path], list[tuple[list[str], dict[str, str]]]]


def stub_env(stub: UpstreamStub) -> dict[str, str]:
    """The built-in endpoints served by the stub, each with a dummy key (the stub takes
    any): what a user sets to point pointsman at their own upstreams."""
    return {env_base_url_var("openai"): stub.base_url,
            env_base_url_var("google"): stub.base_url,
            env_base_url_var("anthropic"): stub.url,
            "OPENAI_API_KEY": "sk-dummy", "ANTHROPIC_API_KEY": "sk-dummy",
            "GEMINI_API_KEY": "dummy"}


def two_turns(stub: UpstreamStub, tmp_path: Path, launch: Launch) -> list[dict[str, Any]]:
    """``pointsman serve`` (built-in config) over the stub; run the agent's two turns that
    ``launch`` describes (given the gateway's URL and a scratch directory), each one
    answered; stop the gateway with SIGTERM (it flushes the log) and return the log."""
    stub.behave("*", text=ANSWER)
    served = tmp_path / "served"
    workdir = tmp_path / "work"
    served.mkdir()
    workdir.mkdir()
    with serving(None, env=stub_env(stub), cwd=served) as (proc, url):
        for argv, env in launch(url, tmp_path):
            code, out, err = run_bounded(argv, env, workdir)
            assert code == 0 and ANSWER in out, f"exit {code}\n--- stdout\n{out}\n" \
                                                f"--- stderr\n{err}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    return logged(served / "pointsman-requests.db")


def check_one_session(rows: list[dict[str, Any]], default_name: str) -> list[dict[str, Any]]:
    """Two turns, both answered by the stub through the alias-routed default name (the
    first) and costed; one session key; one model. Returns the two decisions."""
    shown = [(r["requested_model"], r["model"], r["session"], r["outcome"]) for r in rows]
    assert len(rows) == 2, shown
    first, second = rows
    decisions = [json.loads(r["record"])["decision"] for r in rows]
    assert first["requested_model"] == default_name, shown
    assert decisions[0]["reason"].startswith("alias "), decisions[0]["reason"]
    assert all(r["outcome"] == "ok" and r["cost_usd"] > 0 and r["stream"] == 1
               for r in rows), shown
    assert first["session"] and first["session"] == second["session"], shown
    assert first["model"] == second["model"], (shown, decisions[1]["reason"])
    assert "moved" not in decisions[1]["reason"], decisions[1]["reason"]
    return decisions


def test_claude_code_default_model_and_a_resumed_session(upstream: UpstreamStub,
                                                         tmp_path: Path) -> None:
    """``claude -p`` without ``--model`` (Claude Code's default, ``claude-opus-*``), then
    ``claude -p --resume`` of the same session: one ``X-Claude-Code-Session-Id``, one
    model. On resume Claude Code asks for the model that answered the session's last turn
    (the Messages answer names it), so the second turn may name it instead of the alias."""
    claude = agent_binary("claude")
    session = str(uuid.uuid4())

    def launch(url: str, scratch: Path) -> list[tuple[list[str], dict[str, str]]]:
        env = base_env(scratch / "home") | {
            "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": AGENT_KEY,
            "CLAUDE_CONFIG_DIR": str(scratch / "home" / ".claude"),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0"}
        return [([str(claude), "-p", FIRST, "--session-id", session], env),
                ([str(claude), "-p", SECOND, "--resume", session], env)]

    rows = two_turns(upstream, tmp_path, launch)
    default_name = str(rows[0]["requested_model"]) if rows else "?"
    assert default_name.startswith("claude-"), rows
    check_one_session(rows, default_name)
    assert rows[0]["session"] == session
    assert rows[1]["requested_model"] in (default_name, rows[0]["model"]), rows[1]


CODEX_DEFAULT_MODEL_CONFIG = "\n".join(line for line in CODEX_CONFIG.splitlines()
                                       if not line.startswith("model = ")) + "\n"


def test_codex_default_model_and_a_resumed_session(upstream: UpstreamStub,
                                                   tmp_path: Path) -> None:
    """``codex exec`` with no model configured (Codex's default; 0.171 sends
    ``gpt-6.2-sol`` and declares its tools in an ``additional_tools`` input item), then
    ``codex exec resume --last``: one ``session-id``, one model."""
    codex = agent_binary("codex")

    def launch(url: str, scratch: Path) -> list[tuple[list[str], dict[str, str]]]:
        codex_home = scratch / "home" / ".codex"
        codex_home.mkdir(parents=True)
        (codex_home / "config.toml").write_text(CODEX_DEFAULT_MODEL_CONFIG.format(url=url))
        env = base_env(scratch / "home") | {"CODEX_HOME": str(codex_home),
                                            "POINTSMAN_KEY": AGENT_KEY}
        common = [str(codex), "exec", "--skip-git-repo-check", "--strict-config",
                  "--color", "never"]
        return [([*common, FIRST], env), ([*common, "resume", "--last", SECOND], env)]

    rows = two_turns(upstream, tmp_path, launch)
    default_name = str(rows[0]["requested_model"]) if rows else "?"
    assert default_name.startswith(("gpt-", "codex-")), rows
    check_one_session(rows, default_name)
    assert rows[1]["requested_model"] == default_name, rows[1]
