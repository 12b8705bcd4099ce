"""The providers config section and the deployments built from it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from pointsman.catalog import Catalog
from pointsman.config import PointsmanConfig, load_config
from pointsman.errors import ConfigError, UpstreamServerError
from pointsman.providers.base import ChatCall, Timeouts
from pointsman.providers.config import ProviderSet, build_providers, env_base_url_var
from pointsman.router import resolve_catalog
from pointsman.testing import UpstreamStub

SECRET = "sk-inline-secret-93f1a7"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pointsman.yaml"
    path.write_text(text, "utf-8")
    return path


def build(config: PointsmanConfig, environ: dict[str, str]) -> ProviderSet:
    return build_providers(config, resolve_catalog(config), environ=environ)


def close(providers: ProviderSet) -> None:
    asyncio.run(providers.aclose())


def test_default_config_gives_every_model_its_endpoint(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    config = load_config()
    providers = build(config, {"OPENAI_API_KEY": "sk-a", "ANTHROPIC_API_KEY": "sk-b"})
    try:
        assert providers.unavailable == {"google": "GEMINI_API_KEY is not set"}
        assert "sk-a" not in caplog.text and "GEMINI_API_KEY" in caplog.text
        [mini] = providers.deployments("gpt-4o-mini")
        assert (mini.name, mini.upstream_model, mini.endpoint) == (
            "gpt-4o-mini@openai", "gpt-4o-mini", "openai")
        assert mini.timeouts == Timeouts(5, 30, 120)
        [llama] = providers.deployments("llama3.1-8b")
        assert (llama.upstream_model, llama.timeouts.total) == ("llama3.1:8b", 600)
        assert providers.deployments("gemini-2.5-pro") == []
        assert "gemini-2.5-pro" not in providers.models()
        assert providers.deployments("no-such-model") == []
    finally:
        close(providers)


def test_deployments_timeouts_and_env_base_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
providers:
  endpoints:
    azure-east: {kind: openai, base_url: "https://east.example.com/openai/v1",
                 api_key: "SECRET", api_key_header: api-key, timeouts: {first_token: 10}}
  deployments:
    gpt-4o-mini:
      - {endpoint: openai}
      - {endpoint: azure-east, upstream_model: gpt-4o-mini-2024-07-18, timeouts: {total: 60}}
""".replace("SECRET", SECRET)))
    assert SECRET not in str(config) and SECRET not in repr(config)
    environ = {"OPENAI_API_KEY": "sk-o", env_base_url_var("openai"): "http://127.0.0.1:9/v1"}
    providers = build(config, environ)
    try:
        first, second = providers.deployments("gpt-4o-mini")
        assert (first.name, second.name) == ("gpt-4o-mini@openai", "gpt-4o-mini@azure-east")
        assert second.upstream_model == "gpt-4o-mini-2024-07-18"
        assert second.timeouts == Timeouts(5, 10, 60)
        assert "127.0.0.1:9" in repr(first.provider)
        assert SECRET not in repr(second.provider)
    finally:
        close(providers)
    assert env_base_url_var("azure-east") == "POINTSMAN_ENDPOINT_AZURE_EAST_BASE_URL"


@pytest.mark.parametrize("text,field", [
    ("providers:\n  deployments:\n    gpt-4o-mini: [{endpoint: azure}]\n",
     "providers.deployments"),
    ("providers:\n  endpoints:\n    x: {kind: grpc, base_url: 'http://h'}\n",
     "providers.endpoints.x.kind"),
    ("providers:\n  endpoints:\n    x: {kind: openai, base_url: 'h:1'}\n",
     "providers.endpoints.x.base_url"),
    ("providers:\n  timeouts: {total: 0}\n", "providers.timeouts.total"),
    ("providers:\n  endpoints:\n    x: {kind: openai, base_url: 'http://h', colour: 1}\n",
     "providers.endpoints.x.colour"),
])
def test_bad_provider_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as caught:
        load_config(write(tmp_path, text))
    if "azure" in text:
        assert "gpt-4o-mini[0].endpoint: unknown endpoint 'azure'" in str(caught.value)


def test_unknown_catalog_provider_or_deployment_model(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
catalog:
  models:
    my-model: {provider: together, input_price: 1, output_price: 1, context_window: 8000,
               quality: 50}
"""))
    with pytest.raises(ConfigError, match=r"catalog\.models\.my-model\.provider: unknown "
                                          r"endpoint 'together'"):
        build(config, {})
    config = load_config(write(tmp_path, "providers:\n  deployments:\n"
                                         "    gpt-9: [{endpoint: openai}]\n"))
    with pytest.raises(ConfigError, match=r"providers\.deployments\.gpt-9: unknown model"):
        build(config, {})


def test_deployments_call_the_upstream_through_one_shared_client(
        upstream: UpstreamStub, tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f"""
providers:
  endpoints:
    primary: {{kind: openai, base_url: "{upstream.base_url}", api_key_env: STUB_KEY}}
    claude: {{kind: anthropic, base_url: "{upstream.url}", api_key_env: STUB_KEY}}
  deployments:
    gpt-4o-mini: [{{endpoint: primary}}, {{endpoint: claude, upstream_model: claude-alt}}]
"""))
    catalog: Catalog = resolve_catalog(config)
    upstream.behave("gpt-4o-mini", statuses=[500])

    async def scenario() -> list[Any]:
        providers = build_providers(config, catalog, environ={"STUB_KEY": "k"})
        first, second = providers.deployments("gpt-4o-mini")
        assert first.provider.wire is second.provider.wire  # type: ignore[attr-defined]
        outcomes: list[Any] = []
        for dep in (first, second):
            call = ChatCall({"model": dep.upstream_model,
                             "messages": [{"role": "user", "content": "hi"}]}, dep.timeouts)
            try:
                outcomes.append((await dep.provider.complete(call)).body)
            except UpstreamServerError as exc:
                outcomes.append(exc)
        await providers.aclose()
        return outcomes

    failed, answered = asyncio.run(scenario())
    assert isinstance(failed, UpstreamServerError) and failed.status == 500
    assert answered["choices"][0]["message"]["content"] == "stub answer from claude-alt: hi"
    assert upstream.requests("gpt-4o-mini") == 1
    assert upstream.last_headers("claude-alt")["x-api-key"] == "k"


def test_missing_key_leaves_the_model_without_deployment(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.WARNING)
    providers = build(load_config(), {})
    try:
        assert set(providers.unavailable) == {"openai", "anthropic", "google"}
        assert providers.deployments("claude-haiku-4-5") == []
        assert [d.name for d in providers.deployments("qwen2.5-7b")] == ["qwen2.5-7b@vllm"]
    finally:
        close(providers)
