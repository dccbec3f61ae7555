"""liqrisk HTTP API: ``create_app()`` builds the Flask app (routes under ``/v1``, problem+json errors).

The calculator routes import only :mod:`core`; backtests and sweeps are jobs run by ``liqrisk worker``
processes (:mod:`api.jobs`), so the API never imports the backtester (pandas, vectorbt).
"""

from __future__ import annotations

from flask import Flask

from . import errors, heavy_lane, heavy_workers, light_lane, limits, observability, security
from .config import Config, TestConfig

__all__ = ["create_app", "Config", "TestConfig"]


class _App(Flask):
    """Flask that asks once per function whether a hook or view is a coroutine function (Flask asks again for
    each of a request's seven hooks and its view, every request; ours are all plain functions)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync: dict = {}

    def ensure_sync(self, func):  # type: ignore[override]
        try:
            return self._sync[func]
        except KeyError:
            out = super().ensure_sync(func)
            if out is func and len(self._sync) < 1024:  # only plain functions, and a bounded number of them
                self._sync[func] = func
            return out
        except TypeError:  # not hashable
            return super().ensure_sync(func)


def create_app(config: type[Config] | None = None) -> Flask:
    """Build the app. ``config`` is a :class:`Config` subclass (default: :class:`Config`, read from
    ``LIQRISK_*`` environment variables)."""
    app = _App(__name__, static_folder=None)
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
    paths = light_lane.lane_paths(app)
    # which requests are heavy: one rule for the heavy lane here and the hand-off to the heavy workers
    rule = heavy_workers.HeavyRule.of(app, heavy_workers.heavy_paths(app), paths)
    app.extensions["liqrisk_heavy_rule"] = rule
    heavy_lane.install(app, rule)  # before the rate limits decorate the views: they are checked first
    observability.install(app)  # request id and timer first, so every response (401/413/429 too) has them
    limits.install(app)  # rate limits before the key check, so guessing keys is throttled too
    security.install(app)
    if app.config["TRUSTED_PROXIES"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    if light_lane.lane_wanted(app.config):
        app.wsgi_app = light_lane.LightLane(app.wsgi_app, paths, app.config["LIGHT_LANE_MAX_BODY"])  # type: ignore[method-assign]
    return app


def _load_tiers(app: Flask) -> None:
    """Tier tables of ``LIQRISK_TIERS_DIR`` now and on SIGHUP (gunicorn: its master's on_reload hook)."""
    import sys

    from . import tier_store

    tier_store.load(app.config["TIERS_DIR"])
    if "gunicorn.arbiter" not in sys.modules:
        tier_store.install_sighup(app.config["TIERS_DIR"])
