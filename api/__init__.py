"""liqrisk HTTP API: ``create_app()`` builds the Flask app (routes under ``/v1``, problem+json errors).

The calculator routes import only :mod:`core`; backtests and sweeps are jobs run by ``liqrisk worker``
processes (:mod:`api.jobs`), so the API never imports the backtester (pandas, vectorbt).
"""

from __future__ import annotations

from flask import Flask

from . import errors, limits, observability, security
from .config import Config, TestConfig

__all__ = ["create_app", "Config", "TestConfig"]


def create_app(config: type[Config] | None = None) -> Flask:
    """Build the app. ``config`` is a :class:`Config` subclass (default: :class:`Config`, read from
    ``LIQRISK_*`` environment variables)."""
    app = Flask(__name__, static_folder=None)
    app.config.from_object(config or Config)
    app.json.sort_keys = False
    from .routes import backtests, calculators, docs, jobs, liquidation, market, meta, risk, web

    app.register_blueprint(meta.bp)
    app.register_blueprint(liquidation.bp)
    app.register_blueprint(calculators.bp)
    app.register_blueprint(risk.bp)
    app.register_blueprint(market.bp)
    app.register_blueprint(backtests.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(web.bp)
    _load_tiers(app)
    errors.register(app)
    observability.install(app)  # request id and timer first, so every response (401/413/429 too) has them
    limits.install(app)  # rate limits before the key check, so guessing keys is throttled too
    security.install(app)
    if app.config["TRUSTED_PROXIES"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    return app


def _load_tiers(app: Flask) -> None:
    """Tier tables of ``LIQRISK_TIERS_DIR`` now and on SIGHUP (gunicorn: its master's on_reload hook)."""
    import sys

    from . import tier_store

    tier_store.load(app.config["TIERS_DIR"])
    if "gunicorn.arbiter" not in sys.modules:
        tier_store.install_sighup(app.config["TIERS_DIR"])
