"""Virtual API keys: ``Authorization: Bearer <key>``, compared in constant time.

Each key has an owner (user, team, plan) that becomes request metadata, and the model
names it may request (shell-style patterns such as ``router-*``; none listed: all).
With no key configured the gateway is open, and binds only to loopback
(:func:`check_bind`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from pointsman.errors import AuthError, ConfigError, PermissionDeniedError
from pointsman.gateway.config import LOOPBACK_HOSTS, KeyConfig
from pointsman.types import Decision

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

    def scoped(self, decision: Decision, explicit: bool,
               candidates: frozenset[str] = frozenset()) -> Decision:
        """The decision this key may be answered by. A key limited to named models that asks
        for one of them (``explicit``) is answered by no other: fallbacks it may not use
        are dropped (unless it may use ``auto``, whose ``candidates`` could answer it
        anyway). A key allowed ``auto``, ``router-*``, ``cascade-*`` or an alias may be
        answered by that route's candidates."""
        if self.models is None or not explicit:
            return decision
        routed = candidates if self.may_use("auto") else frozenset()
        kept = tuple(m for m in decision.fallbacks if m in routed or self.may_use(m))
        if len(kept) == len(decision.fallbacks):
            return decision
        return replace(decision, fallbacks=kept)

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


def _principal(name: str, user: str | None, team: str | None, plan: str | None,
               models: Sequence[str] | None, admin: bool) -> Principal:
    owner = {"key": name, "user": user, "team": team, "plan": plan}
    return Principal(name, owner, tuple(models) if models is not None else None, admin)


class KeyRing:
    """Config keys (compared as given) and database keys (compared by SHA-256), every
    comparison in constant time and against every key."""

    def __init__(self, keys: Sequence[KeyConfig], db_path: str | None = None,
                 reload_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys: list[_Key] = []
        for cfg in keys:
            secret = cfg.secret()
            if secret is None:
                raise ConfigError(f"gateway.keys: key {cfg.name!r}: environment variable "
                                  f"{cfg.key_env} is not set")
            self._keys.append(_Key(secret.encode(), _principal(
                cfg.name, cfg.user, cfg.team, cfg.plan, cfg.models, cfg.admin)))
        self.db_path = db_path
        self.reload_s = reload_s
        self.clock = clock
        self._hashed: list[_Key] = []
        self._loaded_at = -math.inf

    @property
    def open(self) -> bool:
        return not self._keys and self.db_path is None

    @property
    def admin_secrets(self) -> list[str]:
        return [k.secret.decode() for k in self._keys if k.principal.admin]

    def _database_keys(self) -> list[_Key]:
        if self.db_path is None:
            return []
        now = self.clock()
        if now - self._loaded_at >= self.reload_s:
            from pointsman.gateway.keystore import load_keys

            self._hashed = [_Key(k.sha256, _principal(k.name, k.user, k.team, k.plan, k.models,
                                                       k.admin))
                            for k in load_keys(self.db_path) if not k.revoked]
            self._loaded_at = now
        return self._hashed

    def authenticate(self, authorization: str | None, api_key: str | None = None) -> Principal:
        """The caller of ``Authorization: Bearer <key>``, or of ``x-api-key: <key>`` (as
        Anthropic's clients send it) when there is no Authorization header."""
        if self.open:
            return ANONYMOUS
        if not authorization and api_key and api_key.strip():
            return self._find(api_key.strip().encode())
        if not authorization:
            raise AuthError("missing API key: send it as 'Authorization: Bearer <key>' "
                            "or 'x-api-key: <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("malformed Authorization header: expected 'Bearer <key>'")
        return self._find(token.strip().encode())

    def _find(self, given: bytes) -> Principal:
        found: Principal | None = None
        for key in self._keys:  # compare with every key so timing says nothing
            if hmac.compare_digest(given, key.secret):
                found = key.principal
        hashed = self._database_keys()
        if hashed:
            given_hash = hashlib.sha256(given).digest()
            for key in hashed:
                if hmac.compare_digest(given_hash, key.secret):
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
