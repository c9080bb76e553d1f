# One image for every phasegate process in docker-compose.yml: the stream worker
# (`phasegate worker`), the ClickHouse sink (`phasegate sink`) and the one-shot topic
# creation (`phasegate topics create`). It installs the package without the `local`
# extra: containers talk to Apache Kafka and a ClickHouse server, never Tansu or chdb.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin phasegate

COPY pyproject.toml README.md /tmp/src/
COPY phasegate /tmp/src/phasegate
COPY rollout /tmp/src/rollout
COPY schemas /tmp/src/schemas
COPY producers /tmp/src/producers
COPY streams /tmp/src/streams
COPY sinks /tmp/src/sinks
COPY dashboard /tmp/src/dashboard
RUN pip install /tmp/src && rm -rf /tmp/src

USER phasegate
# Faust keeps its table data and phasegate its state folder under the working directory.
WORKDIR /home/phasegate
# The worker's web server (Settings.worker_port).
EXPOSE 6066

ENTRYPOINT ["phasegate"]
CMD ["--help"]
