"""Latency-aware and adaptive routing.

Kept import-light: :mod:`pointsman.config` imports :mod:`pointsman.latency.config`, so this
``__init__`` imports nothing.

- :mod:`.config`        the ``latency`` config section (windows, targets, use cases, bandit)
- :mod:`.window`        samples, exact percentiles, the in-memory sliding windows
- :mod:`.redis_window`  the windows in Redis (atomic Lua append + trim; one-call snapshot)
- :mod:`.targets`       per-request latency targets: exclude / penalise / fastest (pure)
- :mod:`.bandit`        discounted UCB1 / Thompson sampling, the reward, the in-memory
  store, the deployment chooser
- :mod:`.redis_bandit`  the bandit statistics in Redis (atomic Lua updates)
- :mod:`.tiers`         the optional bandit among the models of one tier (a score bonus)
- :mod:`.wiring`        :class:`~.wiring.LatencySource`, :class:`~.wiring.LatencyRecorder`,
  :func:`~.wiring.build_latency`

The Redis-shared deployment health (the breaker of :mod:`pointsman.health`) is
:mod:`pointsman.health_redis`.
"""
