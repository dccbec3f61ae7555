# liqrisk API: slim Python, non-root user, the package installed with its compiled kernels, gunicorn.
FROM python:3.11-slim

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
    && python -m core.warmup \
    && python -m backtest.warmup \
    && chown -R liqrisk:liqrisk /app

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"]
