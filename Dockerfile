# The project's processes (saga worker, bridge, domain services, HTTP API, DLQ processor) as one
# image; the compose service's command picks which. Built from requirements.lock (every package pinned
# with its hashes, scripts/lock.sh) and runs as an unprivileged user whose only writable path is the
# state directory, a volume in docker-compose.yml.
FROM python:3.11.13-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CF_STATE_DIR=/var/lib/cloud-factory
WORKDIR /app
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY core ./core
COPY cloud_factory ./cloud_factory
COPY schemas ./schemas
COPY workflows ./workflows
COPY activities ./activities
COPY bridges ./bridges
COPY edge ./edge
COPY workers ./workers
COPY services ./services
COPY messaging ./messaging
RUN pip install --no-deps --no-build-isolation --no-index . && pip check
# The state directory (heartbeats, the fallback spool) belongs to the user; a named volume mounted
# there starts with this ownership.
RUN useradd --system --uid 10001 --no-create-home cloudfactory \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/cloud-factory
USER 10001:10001
ENTRYPOINT ["cloud-factory"]
CMD ["worker", "all"]
