"""The ``redis`` config section: one Redis (or Redis Cluster) for every shared store.

Keys (strict: unknown keys are refused):

- ``url``: ``redis://[user:password@]host:port/db`` or ``rediss://`` (TLS). With
  ``cluster: true`` it names any one node of the cluster (the others are discovered) and
  the database must be 0.
- ``cluster``: ``true`` for Redis Cluster. An explicit flag rather than a URL scheme:
  ``redis://`` URLs stay what every Redis tool understands, and a wrong guess is never
  made from a hostname. Every script of the latency, bandit and health stores keeps to
  one hash slot (hash tags ``{...}`` in key names), so they work on a cluster.
- ``socket_timeout_s`` (default 2 s) and ``connect_timeout_s`` (default 2 s): how long a
  command or a connect may take. Generous on purpose: a busy 2-core host can stall a
  healthy Redis round trip for hundreds of milliseconds, and a timeout there turns into a
  dropped sample or a fail-open/fail-closed decision. Lower them on an idle, fast host.
- ``max_connections`` (default 64): per client (per node on a cluster); single-Redis
  clients wait up to ``socket_timeout_s`` for a free connection when all are busy.
- ``prefix`` (default ``pointsman:``): put before every key; each store adds its own part
  (``latency:``, ``health:``, ``spend:``). It may not contain ``{`` or ``}``: the stores
  add their own hash tags.
- ``retries`` (default 0) and ``retry_backoff_s`` (default 0.05): retries of a command
  that failed on a connection error or timeout, with jittered exponential backoff from
  ``retry_backoff_s`` (capped at 1 s). A retried command may run twice; the latency and
  health stores tolerate that (one duplicated sample or outcome), the spend ledger never
  retries whatever this says (a reservation must not be taken twice).

The older per-store keys (``latency.redis_url``, ``latency.redis_prefix``,
``latency.socket_timeout_s``, the same three under ``gateway.health`` and ``budgets``) still
work: when given, they override this section for that store only. A per-store
``redis_url`` keeps its old meaning, a single Redis (``cluster`` does not apply to it): say,
the spend ledger on a Redis of its own beside a cluster for the rest. Left out, the store
uses this section.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def check_prefix(value: str | None) -> str | None:
    """Refuse braces in a key prefix: they would change the stores' hash tags."""
    if value is not None and ("{" in value or "}" in value):
        raise ValueError("a Redis key prefix may not contain '{' or '}' "
                         "(pointsman adds its own hash tags)")
    return value


def check_url(value: str | None) -> str | None:
    if value is not None and urlsplit(value).scheme not in ("redis", "rediss"):
        raise ValueError(f"expected a redis:// or rediss:// URL, got {value!r:.60}")
    return value


class RedisConfig(BaseModel):
    """Where the shared stores keep their state, and how patiently they talk to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default=DEFAULT_URL,
                     description="The Redis every Redis store uses (redis:// or rediss://).")
    cluster: bool = Field(default=False, description="Whether `url` is a node of a Redis Cluster.")
    socket_timeout_s: float = Field(default=2.0, gt=0, le=60,
                                    description="Seconds a Redis command may take.")
    connect_timeout_s: float = Field(default=2.0, gt=0, le=60,
                                     description="Seconds to connect to Redis.")
    max_connections: int = Field(default=64, ge=1, le=10_000,
                                 description="Pooled connections per store.")
    prefix: str = Field(default="pointsman:",
                        description="Prefix of every key (each store adds its own part).")
    retries: int = Field(default=0, ge=0, le=10,
                         description="Retries of a command after a connection error.")
    retry_backoff_s: float = Field(default=0.05, ge=0, le=10,
                                   description="Seconds between those retries.")

    _url = field_validator("url")(check_url)
    _prefix = field_validator("prefix")(check_prefix)

    @model_validator(mode="after")
    def _cluster_db(self) -> RedisConfig:
        path = urlsplit(self.url).path.strip("/")
        if self.cluster and path not in ("", "0"):
            raise ValueError(f"Redis Cluster has only database 0; the url names {path!r}")
        return self

    def for_store(self, part: str, *, url: str | None = None, prefix: str | None = None,
                  socket_timeout_s: float | None = None) -> RedisConfig:
        """This section as one store sees it: its own ``part`` after the prefix, and the
        store's old per-store keys (``None`` when not given) overriding this section."""
        update: dict[str, object] = {
            "prefix": prefix if prefix is not None else self.prefix + part}
        if url is not None:
            update.update(url=url, cluster=False)
        if socket_timeout_s is not None:
            update["socket_timeout_s"] = socket_timeout_s
        return self.model_validate({**self.model_dump(), **update})
