# syntax=docker/dockerfile:1
# The sharedcore operator image: `docker build -t sharedcore:0.1.0 .` (the Helm chart's default image).
# Stage 1 builds wheels for sharedcore and its runtime dependencies (no dev tools); stage 2 installs only those
# wheels into a slim Python with no compiler, pip cache or source tree. Pin the base by digest for production.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Only what the wheel is made of (see .dockerignore): tests and tooling stay out of the image.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels sharedcore
# A numeric non-root user, so that Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["sharedcore", "run"]
