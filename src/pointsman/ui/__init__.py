"""The web dashboard at ``/ui``, served by the gateway itself (``gateway.ui.enabled``).

A static page (HTML, CSS, JavaScript and the vendored uPlot chart library, shipped in
``static/``; no build step) over a read-only JSON API for admin keys: overview, routing,
latency and cooldowns, budgets, experiments and labels, and a request-log browser.
:mod:`pointsman.ui.http` serves both and says how untrusted text is kept harmless;
:mod:`pointsman.ui.queries` reads the request log; :mod:`pointsman.ui.live` the running
gateway's state. Nothing here is on the request path: with the dashboard off, its routes
are not mounted at all.
"""

from pointsman.ui.http import ui_routes

__all__ = ["ui_routes"]
