#!/usr/bin/env bash
# Install Debian's chromium for the dashboard's browser tests (tests/test_ui_browser.py,
# driven by Playwright for Python, which brings no browser of its own). Quiet when chromium
# is already there. Never fails the caller: not root, no apt-get, or an install that fails
# (offline) is said in one line, exit 0, and the browser tests skip.
set -uo pipefail
browser=${POINTSMAN_CHROMIUM:-}
if [ -n "$browser" ] && [ -x "$browser" ]; then exit 0; fi
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: chromium not found and cannot apt-get it (not root or no apt); the browser tests will skip"
  exit 0
fi
log=${TMPDIR:-/tmp}/pointsman-install-browser.log
if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >"$log" 2>&1 \
    || { apt-get update >>"$log" 2>&1 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >>"$log" 2>&1; }; then
  echo "install-browser: installed $(chromium --version 2>/dev/null || echo chromium)"
else
  echo "install-browser: apt-get install chromium failed (see $log); the browser tests will skip"
fi
exit 0
