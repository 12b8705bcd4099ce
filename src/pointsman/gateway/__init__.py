"""The OpenAI-compatible gateway (Starlette on uvicorn), thin over the library.

Kept import-light on purpose: :mod:`pointsman.config` imports :mod:`.config`, so this
``__init__`` imports nothing. Modules:

- :mod:`.config`    the ``gateway`` config section
- :mod:`.app`       the app factory and lifespan (:func:`.app.create_app`)
- :mod:`.runtime`   everything built once at start-up (router, executor, log, keys, metrics)
- :mod:`.parse`     request body and headers → :class:`~pointsman.types.RouteRequest`
- :mod:`.chat`      ``POST /v1/chat/completions``; :mod:`.sse` the event stream;
                    :mod:`.respond` answers, ``x-pointsman-*`` headers, log records
- :mod:`.models`    ``GET /v1/models`` and ``GET /health``
- :mod:`.auth`      virtual API keys (config and :mod:`.keystore`, the keys database)
- :mod:`.errors`    every error → one OpenAI-style JSON body; :mod:`.metrics` Prometheus

The executor (fallbacks, retries, budgets per attempt) is :mod:`pointsman.executor`; deployment
health and cooldowns are :mod:`pointsman.health`.
"""
