"""Endpoints that point back at the gateway itself: a request routed there would call the
gateway again, and again (a newcomer's vLLM endpoint on the gateway's own port did)."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from pointsman.config import PointsmanConfig
from pointsman.providers.config import env_base_url_var

LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"}


def endpoints_on_self(cfg: PointsmanConfig, host: str, port: int) -> list[str]:
    """Names of the endpoints whose base URL (after its environment override) is
    ``host:port``, or a loopback address on ``port`` when the gateway listens there."""
    mine = {host} | (LOOPBACK if host in LOOPBACK else set())
    found = []
    for name, endpoint in cfg.providers.endpoints.items():
        url = urlsplit(os.environ.get(env_base_url_var(name)) or endpoint.base_url or "")
        default = 443 if url.scheme == "https" else 80
        try:
            their_port = url.port or default
        except ValueError:
            continue
        if url.hostname in mine and their_port == port:
            found.append(name)
    return found


def warn_self_loops(cfg: PointsmanConfig, host: str, port: int) -> list[str]:
    """One line on standard error per endpoint that would loop back; the lines."""
    lines = [f"pointsman: warning: endpoint {name!r} points at this gateway ({host}:{port}); "
             f"requests routed to it would loop: change its base_url or set "
             f"{env_base_url_var(name)}" for name in endpoints_on_self(cfg, host, port)]
    for line in lines:
        print(line, file=sys.stderr)
    return lines
