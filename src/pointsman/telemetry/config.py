"""The ``telemetry`` config section (OTLP/HTTP trace export; off by default)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TelemetryConfig(BaseModel):
    """``telemetry``: a span per request (GenAI semantic conventions) and a child span per
    upstream attempt, exported over OTLP/HTTP (protobuf) in batches from a background
    thread. Needs the ``otel`` extra (``pip install 'pointsman[otel]'``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=False,
                          description="Export an OpenTelemetry span per request (needs the otel "
                                      "extra).")
    endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", min_length=1,
                          description="The OTLP/HTTP traces endpoint.")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="Headers sent with each export (a collector's API "
                                                "key, say).")  # e.g. an API key of the collector
    service_name: str = Field(default="pointsman", min_length=1,
                              description="The service.name resource attribute.")
    sample_ratio: float = Field(default=1.0, ge=0, le=1,
                                description="Share of requests traced.")  # of requests traced
    timeout_s: float = Field(default=10.0, gt=0,
                             description="Seconds one export call may take.")  # one export call
    max_queue_size: int = Field(default=2048, ge=1,
                                description="Spans waiting for export; more are dropped. "
                                            "")  # spans waiting; more are dropped
    export_batch_size: int = Field(default=512, ge=1, description="Spans per export call.")
    schedule_delay_s: float = Field(default=5.0, gt=0,
                                    description="Longest wait before a batch is exported. "
                                                "")  # longest wait before a batch goes
