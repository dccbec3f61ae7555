# liqrisk API (and, with `liqrisk worker`, the job worker): slim Python, non-root user, the package installed with its
# compiled kernels, gunicorn. BASE_IMAGE: any image with Python 3.11 whose `python` and `pip` are on PATH, e.g. one
# from a registry mirror, or the Debian-only one scripts/docker-local-base.sh builds where Docker Hub is out of reach.
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL: a PyPI mirror for this build only (not in the running image's environment;
# `docker history` shows build arguments, so put no password in them).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/app/.numba-cache \
    LIQRISK_BIND=0.0.0.0:8000

WORKDIR /app
RUN useradd --create-home --uid 10001 liqrisk

COPY pyproject.toml README.md openapi.yaml gunicorn.conf.py ./
COPY core ./core
COPY api ./api
COPY backtest ./backtest

RUN pip install --no-cache-dir . \
    && python -m compileall -q core api backtest \
    && python -m core.warmup \
    && python -m backtest.warmup \
    && chown -R liqrisk:liqrisk /app

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"]
