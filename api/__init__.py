"""liqrisk HTTP API: ``create_app()`` builds the Flask app (routes under ``/v1``, problem+json errors).

The calculator routes import only :mod:`core`; the backtester (and vectorbt) is imported lazily by its
own route, so a worker starts in well under two seconds.
"""

from __future__ import annotations

from flask import Flask

from . import errors
from .config import Config, TestConfig

__all__ = ["create_app", "Config", "TestConfig"]


def create_app(config: type[Config] | None = None) -> Flask:
    """Build the app. ``config`` is a :class:`Config` subclass (default: :class:`Config`, read from
    ``LIQRISK_*`` environment variables)."""
    app = Flask(__name__, static_folder=None)
    app.config.from_object(config or Config)
    app.json.sort_keys = False
    from .routes import backtests, calculators, docs, liquidation, market, meta, risk

    app.register_blueprint(meta.bp)
    app.register_blueprint(liquidation.bp)
    app.register_blueprint(calculators.bp)
    app.register_blueprint(risk.bp)
    app.register_blueprint(market.bp)
    app.register_blueprint(backtests.bp)
    app.register_blueprint(docs.bp)
    errors.register(app)
    return app
