"""The ``providers`` config section and the builder of runtime deployments.

Example (the built-in default config declares the five endpoints below)::

    providers:
      endpoints:
        openai:    {kind: openai, base_url: "https://api.openai.com/v1",
                    api_key_env: OPENAI_API_KEY}
        anthropic: {kind: anthropic, base_url: "https://api.anthropic.com",
                    api_key_env: ANTHROPIC_API_KEY}
        google:    {kind: openai, api_key_env: GEMINI_API_KEY,
                    base_url: "https://generativelanguage.googleapis.com/v1beta/openai"}
        ollama:    {kind: openai, base_url: "http://127.0.0.1:11434/v1",
                    timeouts: {total: 600}}
        vllm:      {kind: openai, base_url: "http://127.0.0.1:8000/v1"}
      timeouts: {connect: 5, first_token: 30, total: 120}   # seconds; per endpoint too
      pool: {max_connections: 200, max_keepalive_connections: 50, keepalive_expiry_s: 30}
      deployments:            # a model served by several endpoints, tried in this order
        gpt-4o-mini: [{endpoint: openai},
                      {endpoint: azure-east, upstream_model: gpt-4o-mini-2024-07-18}]

An endpoint's ``kind`` is its wire format: ``openai`` (Chat Completions,
``POST {base_url}/chat/completions``), ``anthropic`` (Messages, ``POST {base_url}/v1/messages``)
or ``openai_responses`` (the Responses API, ``POST {base_url}/responses``, sent with
``store: false``; ``reasoning_summary: auto`` asks for reasoning summaries on calls that ask
for reasoning, which needs a verified OpenAI organization)::

        openai-responses: {kind: openai_responses, base_url: "https://api.openai.com/v1",
                           api_key_env: OPENAI_API_KEY, reasoning_summary: auto}

A catalog model without a ``deployments`` entry has one deployment: the endpoint its
catalog ``provider`` names, with its catalog ``upstream_model`` (or its name). Keys come
from the environment variable ``api_key_env`` names, or from ``api_key`` (never printed).
An endpoint whose key variable is unset serves nothing (its models fall back), and is
listed in :attr:`ProviderSet.unavailable`. ``POINTSMAN_ENDPOINT_<NAME>_BASE_URL``
(name upper-cased, other characters as ``_``) overrides an endpoint's ``base_url``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from pointsman.errors import ConfigError
from pointsman.providers.base import Provider, Timeouts

if TYPE_CHECKING:
    import httpx

    from pointsman.catalog import Catalog
    from pointsman.config import PointsmanConfig
    from pointsman.providers.wire import Wire
    from pointsman.types import ModelSpec

log = logging.getLogger("pointsman.providers")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutsConfig(_Strict):
    """Seconds: to connect, to the first byte of a stream, for the whole call."""

    connect: float = Field(default=5.0, gt=0)
    first_token: float = Field(default=30.0, gt=0)
    total: float = Field(default=120.0, gt=0)


class TimeoutsOverride(_Strict):
    connect: float | None = Field(default=None, gt=0)
    first_token: float | None = Field(default=None, gt=0)
    total: float | None = Field(default=None, gt=0)

    def over(self, base: Timeouts) -> Timeouts:
        return Timeouts(self.connect or base.connect, self.first_token or base.first_token,
                        self.total or base.total)


class EndpointConfig(_Strict):
    """One upstream: a wire format (``kind``), a base URL and how to authenticate."""

    kind: Literal["openai", "anthropic", "openai_responses"]
    base_url: str = Field(min_length=1)
    api_key_env: str | None = Field(default=None, min_length=1)
    api_key: SecretStr | None = None
    api_key_header: str | None = Field(default=None, min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: TimeoutsOverride = TimeoutsOverride()
    default_max_tokens: int = Field(default=4096, gt=0)
    anthropic_version: str = "2023-06-01"
    reasoning_summary: Literal["auto", "concise", "detailed"] | None = None  # openai_responses

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("base_url must start with http:// or https:// and name a host")
        return value.rstrip("/")


class DeploymentConfig(_Strict):
    endpoint: str = Field(min_length=1)
    upstream_model: str | None = Field(default=None, min_length=1)
    timeouts: TimeoutsOverride = TimeoutsOverride()


class PoolConfig(_Strict):
    """The shared HTTP client's connection pool."""

    max_connections: int = Field(default=200, gt=0)
    max_keepalive_connections: int = Field(default=50, ge=0)
    keepalive_expiry_s: float = Field(default=30.0, ge=0)
    trust_env: bool = True  # honour HTTP(S)_PROXY / NO_PROXY / SSL_CERT_FILE
    # aiohttp: aiohttp's pool (several times less CPU per call, see providers/wire.py);
    # httpx: httpx's own pool (httpcore; CA bundles from SSL_CERT_FILE); auto: when the
    # owner closes the providers (the gateway does), pointsman's own lean HTTP/1.1 pool
    # (providers/rawwire.py) or aiohttp's when the environment names a proxy; else httpx
    transport: Literal["auto", "aiohttp", "httpx"] = "auto"


class ProvidersConfig(_Strict):
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    timeouts: TimeoutsConfig = TimeoutsConfig()
    pool: PoolConfig = PoolConfig()
    deployments: dict[str, list[DeploymentConfig]] = Field(default_factory=dict)

    @field_validator("deployments")
    @classmethod
    def _known_endpoints(cls, value: dict[str, list[DeploymentConfig]],
                         info: ValidationInfo) -> dict[str, list[DeploymentConfig]]:
        endpoints = info.data.get("endpoints") or {}
        for model, entries in value.items():
            if not entries:
                raise ValueError(f"{model}: give at least one deployment")
            seen: set[str] = set()
            for i, entry in enumerate(entries):
                if entry.endpoint not in endpoints:
                    raise ValueError(f"{model}[{i}].endpoint: unknown endpoint "
                                     f"{entry.endpoint!r}; known: {sorted(endpoints)}")
                if entry.endpoint in seen:
                    raise ValueError(f"{model}[{i}].endpoint: {entry.endpoint!r} is listed twice")
                seen.add(entry.endpoint)
        return value


@dataclass(frozen=True, slots=True)
class Deployment:
    """One endpoint serving one catalog model (what the executor tries)."""

    name: str               # "<catalog model>@<endpoint>", stable across restarts
    provider: Provider
    upstream_model: str
    timeouts: Timeouts
    endpoint: str = ""


@dataclass(slots=True)
class ProviderSet:
    """The providers (one per usable endpoint) and each catalog model's deployments."""

    providers: Mapping[str, Provider]
    by_model: Mapping[str, tuple[Deployment, ...]]
    unavailable: Mapping[str, str] = field(default_factory=dict)  # endpoint -> why
    client: httpx.AsyncClient | Wire | None = None
    owns_client: bool = False
    config: ProvidersConfig | None = None

    def deployments(self, model: str) -> list[Deployment]:
        """The deployments of a catalog model in configured order (empty if none)."""
        return list(self.by_model.get(model, ()))

    def adopt(self, spec: ModelSpec) -> None:
        """Deploy a model learned at run time (a passthrough name) on its endpoint."""
        pc = self.config
        if pc is None or spec.name in self.by_model:
            return
        base = Timeouts(pc.timeouts.connect, pc.timeouts.first_token, pc.timeouts.total)
        by_model = self.by_model
        assert isinstance(by_model, dict)
        by_model[spec.name] = _model_deployments(pc, spec.name, spec.provider, spec.wire_name,
                                                 self.providers, base)

    def models(self) -> list[str]:
        """Catalog models with at least one usable deployment."""
        return [m for m, deps in self.by_model.items() if deps]

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        if self.owns_client and self.client is not None:
            await self.client.aclose()


def env_base_url_var(endpoint: str) -> str:
    """``POINTSMAN_ENDPOINT_<NAME>_BASE_URL`` for an endpoint name."""
    return f"POINTSMAN_ENDPOINT_{re.sub(r'[^A-Z0-9]', '_', endpoint.upper())}_BASE_URL"


def _api_key(name: str, endpoint: EndpointConfig,
             environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(key, why the endpoint is unusable). The key is never logged."""
    if endpoint.api_key is not None:
        return endpoint.api_key.get_secret_value(), None
    if endpoint.api_key_env is None:
        return None, None
    key = environ.get(endpoint.api_key_env) or None
    if key is None:
        return None, f"{endpoint.api_key_env} is not set"
    return key, None


def make_provider(name: str, endpoint: EndpointConfig,
                  client: httpx.AsyncClient | Wire | None,
                  api_key: str | None, base_url: str | None = None) -> Provider:
    """The adapter for one endpoint (``base_url`` overrides the configured one)."""
    from pointsman.providers.anthropic import AnthropicProvider
    from pointsman.providers.openai_compat import OpenAICompatProvider
    from pointsman.providers.openai_responses import OpenAIResponsesProvider

    url = base_url or endpoint.base_url
    if endpoint.kind == "anthropic":
        return AnthropicProvider(name, url, client, api_key=api_key, headers=endpoint.headers,
                                 api_key_header=endpoint.api_key_header,
                                 version=endpoint.anthropic_version,
                                 default_max_tokens=endpoint.default_max_tokens)
    if endpoint.kind == "openai_responses":
        return OpenAIResponsesProvider(name, url, client, api_key=api_key,
                                       headers=endpoint.headers,
                                       api_key_header=endpoint.api_key_header,
                                       reasoning_summary=endpoint.reasoning_summary)
    return OpenAICompatProvider(name, url, client, api_key=api_key, headers=endpoint.headers,
                                api_key_header=endpoint.api_key_header)


def _check_names(config: ProvidersConfig, catalog: Catalog) -> None:
    for model in config.deployments:
        if model not in catalog:
            raise ConfigError(f"providers.deployments.{model}: unknown model; known: "
                              f"{sorted(catalog.models)}")
    for spec in catalog:
        if spec.name not in config.deployments and spec.provider not in config.endpoints:
            raise ConfigError(
                f"catalog.models.{spec.name}.provider: unknown endpoint {spec.provider!r}; "
                f"known: {sorted(config.endpoints)} (declare it under providers.endpoints or "
                f"give the model providers.deployments)")


def _wire(config: ProvidersConfig, closed: bool = False) -> Wire:
    import httpx

    from pointsman.providers.wire import AiohttpWire, HttpxWire, no_cookies, proxy_env

    pool = config.pool
    if pool.transport == "auto" and closed and not (pool.trust_env and proxy_env()):
        from pointsman.providers.rawwire import RawWire

        return RawWire(max_connections=pool.max_connections,
                       keepalive_expiry=pool.keepalive_expiry_s)
    if pool.transport == "aiohttp" or (pool.transport == "auto" and closed):
        return AiohttpWire(max_connections=pool.max_connections,
                           keepalive_expiry=pool.keepalive_expiry_s, trust_env=pool.trust_env)
    return HttpxWire(httpx.AsyncClient(
        limits=httpx.Limits(max_connections=pool.max_connections,
                            max_keepalive_connections=pool.max_keepalive_connections,
                            keepalive_expiry=pool.keepalive_expiry_s),
        timeout=httpx.Timeout(None, connect=config.timeouts.connect),
        trust_env=pool.trust_env, cookies=no_cookies()))


def build_providers(config: PointsmanConfig | ProvidersConfig, catalog: Catalog,
                    client: httpx.AsyncClient | Wire | None = None,
                    environ: Mapping[str, str] | None = None, *,
                    closed: bool = False) -> ProviderSet:
    """Providers and deployments for every catalog model, over one shared HTTP client.

    ``closed``: the caller will ``aclose()`` the set in the event loop that used it (the
    gateway's lifespan does), so ``pool.transport: auto`` may use the aiohttp transport,
    whose sessions must be closed.

    Raises :class:`~pointsman.errors.ConfigError` for a deployment of an unknown model or
    a catalog ``provider`` that names no endpoint. ``environ`` defaults to ``os.environ``.
    """
    pc = config if isinstance(config, ProvidersConfig) else config.providers
    env = os.environ if environ is None else environ
    _check_names(pc, catalog)
    owns = client is None
    shared = client if client is not None else _wire(pc, closed)
    providers: dict[str, Provider] = {}
    unavailable: dict[str, str] = {}
    for name, endpoint in pc.endpoints.items():
        key, why = _api_key(name, endpoint, env)
        if why is not None:
            unavailable[name] = why
            continue
        providers[name] = make_provider(name, endpoint, shared, key,
                                        env.get(env_base_url_var(name)))
    if unavailable:
        log.warning("providers: endpoints without a key serve nothing: %s",
                    ", ".join(f"{n} ({why})" for n, why in sorted(unavailable.items())))
    base = Timeouts(pc.timeouts.connect, pc.timeouts.first_token, pc.timeouts.total)
    by_model = {spec.name: _model_deployments(pc, spec.name, spec.provider, spec.wire_name,
                                              providers, base)
                for spec in catalog}
    return ProviderSet(providers, by_model, unavailable, shared, owns, pc)


def _model_deployments(pc: ProvidersConfig, model: str, provider: str, wire_name: str,
                       providers: Mapping[str, Provider], base: Timeouts
                       ) -> tuple[Deployment, ...]:
    entries: Sequence[DeploymentConfig] = pc.deployments.get(model) or [
        DeploymentConfig(endpoint=provider)]
    out = []
    for entry in entries:
        if entry.endpoint not in providers:
            continue  # its key is missing: listed in ProviderSet.unavailable
        endpoint = pc.endpoints[entry.endpoint]
        timeouts = entry.timeouts.over(endpoint.timeouts.over(base))
        out.append(Deployment(f"{model}@{entry.endpoint}", providers[entry.endpoint],
                              entry.upstream_model or wire_name, timeouts, entry.endpoint))
    return tuple(out)
