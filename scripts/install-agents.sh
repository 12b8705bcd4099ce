#!/usr/bin/env bash
# Install the real coding agents (Claude Code, Codex CLI) that tests/test_agents_e2e.py runs
# through the gateway. They live in a cache outside the repository
# (${POINTSMAN_AGENTS_DIR:-$HOME/.cache/pointsman/agents}), pinned to exact versions; a stamp
# file makes a second run instant. Never fails the caller: without node/npm, or when the
# install fails (offline), it says so in one line, exits 0, and the tests skip.
set -uo pipefail
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
dir=${POINTSMAN_AGENTS_DIR:-$HOME/.cache/pointsman/agents}
want="@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION @openai/codex@$CODEX_VERSION"
stamp="$dir/.pointsman-agents"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-agents: node/npm not found; the agent end-to-end tests will skip"
  exit 0
fi
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] \
    && [ -x "$dir/node_modules/.bin/claude" ] && [ -x "$dir/node_modules/.bin/codex" ]; then
  exit 0
fi
mkdir -p "$dir" 2>/dev/null || { echo "install-agents: cannot create $dir; skipping"; exit 0; }
log="$dir/install.log"
# shellcheck disable=SC2086  # $want is two package specs on purpose
if npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact $want \
    >"$log" 2>&1 \
    && "$dir/node_modules/.bin/claude" --version >>"$log" 2>&1 \
    && "$dir/node_modules/.bin/codex" --version >>"$log" 2>&1; then
  echo "$want" > "$stamp"
  echo "install-agents: installed $want into $dir"
else
  echo "install-agents: npm install failed (see $log); the agent end-to-end tests will skip"
fi
exit 0
