"""Every fenced shell command of README.md runs, as written, in a scratch copy of the repo.

Why: a README command that fails is the first thing a newcomer meets. Each ```bash block's
commands run in order (continuation lines joined) with ``.venv/bin`` first on ``PATH``;
the test command itself (``scripts/test.sh``) is left out. What the test changes, and why:

* ``eval``, ``train`` and ``calibrate`` get ``--sample 300`` (the same code, seconds not
  minutes);
* ports 8000 and 9001 become free ones (other processes may hold them on a shared host);
* a command ending in ``&`` and ``pointsman serve`` run in the background (serve is waited
  for on ``/health``) and are stopped at the end;
* ``<!-- file: NAME -->`` before a YAML block writes that block to NAME first, so commands
  naming it (``--config my.yaml``) have it;
* ``<!-- not run: why -->`` before a block skips it, and ``<!-- not run "PREFIX": why -->``
  skips the block's commands that start with PREFIX; each skip is reported (``-rs``
  prints the reasons), so removing a command is never the way to pass.

Commands that read ``../shared/data`` need the outcome data (``POINTSMAN_SHARED_DATA``,
else ``../shared/data`` beside the repository, as CI lays it out); without it they are
reported as skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DATA = Path(os.environ.get("POINTSMAN_SHARED_DATA") or ROOT.parent / "shared" / "data")
EXCLUDED = ("scripts/test.sh",)
QUICK = re.compile(r"(pointsman (?:eval|train|calibrate)) ")
MARKER = re.compile(r'<!--\s*(not run(?:\s+"([^"]+)")?|file)\s*:\s*(.+?)\s*-->')
pytestmark = pytest.mark.timeout(900)


@dataclass
class Block:
    lang: str
    lines: list[str]
    line_no: int
    marker: tuple[str, str | None, str] | None = None
    commands: list[str] = field(default_factory=list)


def parse_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i, pending = 0, None
    while i < len(lines):
        match = MARKER.search(lines[i])
        if match:
            kind = "file" if match.group(1) == "file" else "not run"
            pending = (kind, match.group(2), match.group(3))
        elif lines[i].startswith("```") and len(lines[i]) > 3:
            start, lang, body = i, lines[i][3:].strip(), []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(Block(lang, body, start + 1, pending))
            pending = None
        elif lines[i].strip():
            pending = None if not lines[i].startswith("<!--") else pending
        i += 1
    return blocks


def commands(block: Block) -> list[str]:
    """Logical commands: comment lines dropped, backslash continuations joined."""
    out, current = [], ""
    for raw in block.lines:
        line = raw.rstrip()
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    return [c for c in out if not c.strip().startswith(EXCLUDED)]


def venv_is_current() -> bool:
    """Whether ``scripts/bootstrap.sh`` would find this venv installed (its stamp)."""
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()
                          + (ROOT / "scripts" / "bootstrap.sh").read_bytes()).hexdigest()
    stamp = Path(sys.prefix) / ".pointsman-installed"
    return stamp.is_file() and stamp.read_text().strip() == want


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Session:
    """A scratch workspace that looks like a fresh clone, and what runs in it."""

    def __init__(self, tmp: Path) -> None:
        self.repo = tmp / "repo"
        self.repo.mkdir()
        for name in ("scripts", "src", "benchmarks", "tests", "pyproject.toml"):
            (self.repo / name).symlink_to(ROOT / name)
        (self.repo / ".venv").symlink_to(Path(sys.prefix))
        if DATA.is_dir():
            (tmp / "shared").mkdir()
            (tmp / "shared" / "data").symlink_to(DATA)
        self.ports = {"8000": str(free_port()), "9001": str(free_port())}
        self.env = {**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}:{os.environ['PATH']}",
                    "PYTHONPATH": str(ROOT / "src"), "ADMIN_KEY": "sk-admin-readme"}
        self.background: list[subprocess.Popen[bytes]] = []
        self.log = tmp / "background.log"

    def rewrite(self, command: str) -> str:
        for old, new in self.ports.items():
            command = command.replace(f":{old}", f":{new}").replace(f"--port {old}",
                                                                      f"--port {new}")
        command = QUICK.sub(r"\1 --sample 300 ", command)
        if "pointsman serve" in command and "--port" not in command:
            command = command.replace("pointsman serve", f"pointsman serve --port "
                                      f"{self.ports['8000']}")
        return command

    def run(self, command: str) -> None:
        command = self.rewrite(command)
        if command.rstrip().endswith("&") or "pointsman serve" in command:
            self.start(command.rstrip().rstrip("&"))
            return
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=self.repo,
                                env=self.env, capture_output=True, text=True, timeout=600,
                                check=False)
        assert result.returncode == 0, (f"README command failed ({result.returncode}): "
                                        f"{command}\n{result.stdout[-2000:]}\n"
                                        f"{result.stderr[-2000:]}")

    def start(self, command: str) -> None:
        with self.log.open("ab") as log:
            self.background.append(subprocess.Popen(
                ["bash", "-c", command], cwd=self.repo, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        url = None
        if "pointsman serve" in command:
            url = f"http://127.0.0.1:{self.ports['8000']}/health"
        elif "pointsman.testing.upstream" in command:
            url = f"http://127.0.0.1:{self.ports['9001']}/v1/models"
        if url:
            self.wait(url)

    def wait(self, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except OSError:
                if any(p.poll() is not None for p in self.background):
                    break
                time.sleep(0.2)
        raise AssertionError(f"{url} never answered:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        for proc in reversed(self.background):  # its own process group: bash and its child
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def test_readme_parses_into_commands() -> None:
    blocks = [b for b in parse_blocks(README.read_text("utf-8")) if b.lang == "bash"]
    runnable = [c for b in blocks if not b.marker for c in commands(b)]
    assert any("pointsman route" in c for c in runnable)
    assert any("pointsman eval" in c for c in runnable)
    assert all("scripts/test.sh" not in c for b in blocks for c in commands(b))


def test_every_readme_command_works(tmp_path: Path) -> None:
    session = Session(tmp_path)
    skipped: list[str] = []
    blocks = parse_blocks(README.read_text("utf-8"))
    for block in blocks:
        if block.lang.startswith("yaml") and block.marker and block.marker[0] == "file":
            (session.repo / block.marker[2]).write_text("\n".join(block.lines) + "\n")
    try:
        for block in blocks:
            if block.lang != "bash":
                continue
            marker = block.marker if block.marker and block.marker[0] == "not run" else None
            if marker and marker[1] is None:
                skipped.append(f"README line {block.line_no}: {marker[2]}")
                continue
            for command in commands(block):
                if marker and command.strip().startswith(marker[1] or ""):
                    skipped.append(f"README line {block.line_no}: {command[:60]}: {marker[2]}")
                elif command.startswith("scripts/bootstrap.sh") and not venv_is_current():
                    # bootstrap would reinstall into this venv from the scratch copy
                    skipped.append(f"README line {block.line_no}: bootstrap skipped, "
                                   f"{sys.prefix} is out of date: run scripts/bootstrap.sh")
                    session.run(command.partition("&&")[2])
                elif "../shared/data" in command and not DATA.is_dir():
                    skipped.append(f"README line {block.line_no}: no outcome data at {DATA}")
                else:
                    session.run(command)
    finally:
        session.stop()
    for line in skipped:
        print(f"not run: {line}")
    assert len(skipped) <= 4, skipped  # exclusions stay rare
