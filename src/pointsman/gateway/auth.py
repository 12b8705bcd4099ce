"""Virtual API keys: ``Authorization: Bearer <key>``, compared in constant time.

Each key has an owner (user, team, plan) that becomes request metadata, and the model
names it may request (shell-style patterns such as ``router-*``; none listed: all).
With no key configured the gateway is open, and binds only to loopback
(:func:`check_bind`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pointsman.errors import AuthError, ConfigError, PermissionDeniedError
from pointsman.gateway.config import LOOPBACK_HOSTS, KeyConfig

log = logging.getLogger("pointsman.gateway")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's name and owner, or the anonymous loopback caller."""

    name: str | None
    owner: dict[str, Any] = field(default_factory=dict)
    models: tuple[str, ...] | None = None
    admin: bool = False

    def may_use(self, model: str) -> bool:
        return self.models is None or any(fnmatchcase(model, p) for p in self.models)

    def check_model(self, model: str) -> None:
        if not self.may_use(model):
            allowed = list(self.models or [])
            raise PermissionDeniedError(
                f"key {self.name!r} may not use model {model!r}; allowed: {allowed}")


ANONYMOUS = Principal(None, admin=True)


@dataclass(frozen=True, slots=True)
class _Key:
    secret: bytes
    principal: Principal


class KeyRing:
    def __init__(self, keys: Sequence[KeyConfig]) -> None:
        self._keys: list[_Key] = []
        for cfg in keys:
            secret = cfg.secret()
            if secret is None:
                raise ConfigError(f"gateway.keys: key {cfg.name!r}: environment variable "
                                  f"{cfg.key_env} is not set")
            owner = {"key": cfg.name, "user": cfg.user, "team": cfg.team, "plan": cfg.plan}
            models = tuple(cfg.models) if cfg.models is not None else None
            self._keys.append(_Key(secret.encode(), Principal(cfg.name, owner, models,
                                                              cfg.admin)))

    @property
    def open(self) -> bool:
        return not self._keys

    @property
    def admin_secrets(self) -> list[str]:
        return [k.secret.decode() for k in self._keys if k.principal.admin]

    def authenticate(self, authorization: str | None) -> Principal:
        if not self._keys:
            return ANONYMOUS
        if not authorization:
            raise AuthError("missing API key: send it as 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("malformed Authorization header: expected 'Bearer <key>'")
        given = token.strip().encode()
        found: Principal | None = None
        for key in self._keys:  # compare with every key so timing says nothing
            if hmac.compare_digest(given, key.secret):
                found = key.principal
        if found is None:
            raise AuthError("invalid API key")
        return found


def check_bind(host: str, ring: KeyRing) -> None:
    """An open gateway (no keys) may only listen on loopback."""
    if ring.open and host not in LOOPBACK_HOSTS:
        raise ConfigError(f"no gateway.keys are configured: refusing to listen on {host!r}; "
                          "configure keys or bind 127.0.0.1, localhost or ::1")
    if ring.open:
        log.warning("no API keys configured: the gateway is OPEN to anyone on loopback (%s)",
                    host)
