# syntax=docker/dockerfile:1.7
# One recipe for every RTML image. Build context: the repository root. Each image is a target
# named after its service and installs only that service's extra from the pinned set:
#   docker build --target inference --build-arg EXTRA=inference \
#       --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu -t rtml-inference .
# skaffold.yaml passes exactly these (tests/k8s check that target, EXTRA and the chart agree).
# Each container runs what `rtml up` runs locally.

FROM python:3.11.14-slim-bookworm AS build
# feature | training | inference | monitor | loadtest: the pyproject extra to install.
ARG EXTRA
# Only the extras with torch set this: torch is pinned to the +cpu build in constraints.txt, which
# exists only on the PyTorch CPU index, so no CUDA wheels are ever pulled in.
ARG TORCH_INDEX=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first, so a code change reuses this layer. Empty package stubs let pip resolve
# the project's extra without the sources; only the pinned set is installed.
COPY pyproject.toml constraints.txt README.md ./
RUN test -n "$EXTRA" || { echo "build with --build-arg EXTRA=<service>" >&2; exit 1; } \
 && mkdir services pipelines \
 && touch services/__init__.py pipelines/__init__.py \
 && pip install -c constraints.txt ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} ".[${EXTRA}]" \
 && pip uninstall --yes rtml

FROM python:3.11.14-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    HOME=/tmp
RUN groupadd --gid 10001 rtml \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin rtml
WORKDIR /app
# Code stays root-owned: the service user can read it, never change it.
COPY --from=build /opt/venv /opt/venv
COPY services ./services
USER 10001:10001

# Kafka events -> Feast push (also runs the chart's setup hook Job).
FROM runtime AS feature
COPY feature_repo ./feature_repo
EXPOSE 8001
CMD ["python", "-m", "services.feature"]

# The training service and the Kubeflow pipeline components it submits.
FROM runtime AS training
COPY feature_repo ./feature_repo
COPY pipelines ./pipelines
EXPOSE 8002
CMD ["python", "-m", "services.training"]

# The BentoML scoring API.
FROM runtime AS inference
COPY feature_repo ./feature_repo
EXPOSE 3000
CMD ["python", "-m", "services.inference"]

# Drift and quality report, retraining requests.
FROM runtime AS monitor
EXPOSE 8003
CMD ["python", "-m", "services.monitor"]

# The in-cluster load generator: `rtml loadtest` with Locust (skaffold profile "loadtest").
FROM runtime AS loadtest
COPY loadtests/locustfile.py ./loadtests/locustfile.py
CMD ["python", "-m", "services.loadtest", "--help"]
