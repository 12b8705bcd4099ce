"""Optional OpenTelemetry export (``telemetry`` in the config, the ``otel`` extra).

:mod:`pointsman.telemetry.config` holds the config section and imports nothing of
OpenTelemetry; :mod:`pointsman.telemetry.tracing` imports the SDK and is imported only when
``telemetry.enabled`` is true, so a gateway without telemetry neither needs the extra nor
pays anything for it per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pointsman.telemetry.config import TelemetryConfig
    from pointsman.telemetry.tracing import Telemetry


def open_telemetry(cfg: TelemetryConfig) -> Telemetry | None:
    """The gateway's telemetry, or None (nothing imported) when ``telemetry.enabled`` is
    false."""
    if not cfg.enabled:
        return None
    from pointsman.telemetry.tracing import Telemetry

    return Telemetry(cfg)
