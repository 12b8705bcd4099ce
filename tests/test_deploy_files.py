"""The Dockerfile, deploy/compose.yaml and deploy/nginx.conf, checked statically (no image
can be built here: no registry for base images). tests/test_replicas.py runs the same
topology as processes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pointsman.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_dockerfile_is_slim_non_root_and_health_checked() -> None:
    steps = dockerfile()
    bases = [args for op, args in steps if op == "FROM"]
    assert bases and all("slim" in base for base in bases)
    final = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    users = [args for op, args in steps[final:] if op == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    health = [args for op, args in steps[final:] if op == "HEALTHCHECK"]
    assert health and "/health" in health[0]
    assert ("EXPOSE", "8000") in steps
    entry = " ".join(args for op, args in steps[final:] if op in ("ENTRYPOINT", "CMD"))
    assert "pointsman" in entry and "serve" in entry and "0.0.0.0" in entry
    assert not any(op == "ADD" for op, _ in steps)  # COPY only: nothing fetched by URL
    copied = [args.split()[0] for op, args in steps if op == "COPY" and "--from" not in args]
    assert all((ROOT / path).exists() for path in copied), copied


def test_compose_runs_two_replicas_behind_a_balancer_with_redis_and_postgres() -> None:
    services = compose()["services"]
    gateways = [name for name in services if name.startswith("gateway")]
    assert len(gateways) == 2
    for name in gateways:
        needs = services[name]["depends_on"]
        assert needs["redis"]["condition"] == needs["postgres"]["condition"] == \
            "service_healthy"
    lb = services["lb"]
    assert set(lb["depends_on"]) == set(gateways)
    assert any(p.startswith("8000:") for p in lb["ports"])
    for name in ("redis", "postgres"):
        assert "healthcheck" in services[name]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text("utf-8")
    upstream = re.search(r"upstream pointsman \{(.*?)\}", nginx, re.S)
    assert upstream is not None
    assert all(f"server {name}:8000" in upstream.group(1) for name in gateways)
    assert "proxy_buffering off" in nginx  # streams are not held back


def test_the_replicas_config_loads_and_shares_state() -> None:
    cfg = load_config(ROOT / "deploy" / "pointsman.yaml")
    postgres = compose()["services"]["postgres"]["environment"]
    assert cfg.gateway.host == "0.0.0.0" and len(cfg.gateway.keys) == 2
    assert cfg.budgets.store == "redis" and cfg.gateway.health.store == "redis"
    assert cfg.latency.store == "redis" and cfg.affinity.store == "redis"
    assert cfg.redis.url.startswith("redis://redis:")
    dsn = cfg.gateway.request_log.postgres_dsn or ""
    assert f"@postgres:5432/{postgres['POSTGRES_DB']}" in dsn
    assert f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@" in dsn
