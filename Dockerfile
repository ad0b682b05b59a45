# The project's workers (saga, bridge and the domain services) as one image; the command picks which.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
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
RUN pip install '.[otlp]'
RUN useradd --system --uid 10001 cloudfactory
USER cloudfactory
ENTRYPOINT ["cloud-factory"]
CMD ["worker", "all"]
