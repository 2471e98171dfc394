"""Loyalty, referral and gift card backend: the application factory."""

import time
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask, g, request
from flask.sessions import SessionInterface

from loyalty.config import check_production, from_environment


class NoCookieSession(SessionInterface):
    """The API is stateless (bearer keys and widget tokens): no cookie session is read or
    written, so no request pays for opening one."""

    def open_session(self, app, request):
        return None  # Flask hands the request a NullSession


NOSNIFF = (("X-Content-Type-Options", "nosniff"),)
NOSNIFF_NO_STORE = (*NOSNIFF, ("Cache-Control", "no-store"))


class LoyaltyFlask(Flask):
    """Flask, asking once per function whether it is a coroutine function, and sending the
    headers every answer needs.

    Flask (and flask-smorest) call `ensure_sync` on every hook and view of every request,
    and `inspect.iscoroutinefunction` costs ~2% of a request's CPU; a function's answer never
    changes. Keyed by the underlying function (a view's bound method is new each request).
    """

    _coroutine: dict = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._added_headers: dict[str | None, tuple] = {}

    def ensure_sync(self, func):
        key = getattr(func, "__func__", func)
        coroutine = self._coroutine.get(key)
        if coroutine is None:
            coroutine = self._coroutine[key] = iscoroutinefunction(func)
        return self.async_to_sync(func) if coroutine else func

    def process_response(self, response):
        """After every `after_request` hook, on every answer (errors and 404s included):
        `nosniff`, so a browser never runs an answer as a type other than the one declared;
        and `no-store` — answers carry codes, secrets, tokens and members' data — unless the
        view chose its own caching (`loyalty.cache_control`). Decided once per endpoint."""
        response = super().process_response(response)
        rule = request._get_current_object().url_rule
        endpoint = rule.endpoint if rule is not None else None
        added = self._added_headers.get(endpoint)
        if added is None:
            view = self.view_functions.get(endpoint)
            own = getattr(view, "own_cache_control", False)
            added = self._added_headers[endpoint] = NOSNIFF if own else NOSNIFF_NO_STORE
        response.headers.extend(added)
        return response


def create_app(config: dict | None = None) -> Flask:
    app = LoyaltyFlask(__name__, instance_relative_config=True)
    app.session_interface = NoCookieSession()
    app.config.update(from_environment(app.instance_path))
    app.config.update(
        API_TITLE="Loyalty API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    app.config.update(config or {})
    check_production(app.config)
    register_extensions(app)
    register_blueprints(app)
    register_request_lifecycle(app)
    register_hooks(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from connectors import models as _connector_models  # noqa: F401
    from loyalty import (
        cache,
        models,  # noqa: F401 - every table known to SQLAlchemy and alembic
        ratelimit,
    )
    from loyalty.extensions import api, db, migrate
    from loyalty.reports import source as reports_source
    from referrals import models as _referral_models  # noqa: F401
    from rewards.catalog import models as _reward_models  # noqa: F401

    db.init_app(app)
    cache.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    api.init_app(app)
    ratelimit.init_app(app)
    reports_source.init_app(app)  # the reports' replica, when REPORTS_DATABASE_URL is set
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]


def register_blueprints(app: Flask) -> None:
    import connectors
    import console
    from loyalty import inputs
    from loyalty.actions.routes import blp as member_actions
    from loyalty.auditlog.routes import blp as audit_log
    from loyalty.earning.routes import blp as earning_rules
    from loyalty.email.routes import bp as email
    from loyalty.extensions import api
    from loyalty.members.routes import blp as members
    from loyalty.ops.routes import bp as ops
    from loyalty.orders.routes import blp as events
    from loyalty.program.routes import blp as program
    from loyalty.reports.routes import blp as reports
    from loyalty.segment_awards import background as segment_award_runs
    from loyalty.segment_awards.routes import blp as segment_awards
    from loyalty.tiers.routes import blp as tiers
    from loyalty.webhooks.routes import blp as webhooks
    from loyalty.widget.routes import me, pages, tokens
    from referrals.routes import blp as referrals
    from referrals.routes import links as referral_links
    from rewards import giftcards
    from rewards.catalog.routes import blp as rewards_catalog

    inputs.register_converters(app)
    for blueprint in (
        program,
        members,
        member_actions,
        events,
        tiers,
        earning_rules,
        rewards_catalog,
        referrals,
        reports,
        segment_awards,
        tokens,
        me,
        webhooks,
        audit_log,
    ):
        api.register_blueprint(blueprint)
    for blueprint in (*giftcards.blueprints(), *connectors.blueprints()):
        api.register_blueprint(blueprint)
    app.teardown_request(segment_award_runs.start_requested)  # awards a request made
    app.register_blueprint(ops)
    app.register_blueprint(referral_links)
    app.register_blueprint(pages)
    app.register_blueprint(email)  # the unsubscribe links of the program's own emails
    console.init_app(app)  # the admin console under /console, with its cookie session


def register_request_lifecycle(app: Flask) -> None:
    from loyalty import inputs, transaction
    from loyalty.auth import authenticate
    from loyalty.error_handlers import register_error_handlers
    from loyalty.ops.routes import LATENCY, REQUESTS

    @app.before_request
    def _start_request():
        # `g` lives on the app context, which an outer context (CLI, tests) may share between
        # requests: never let one request's caller leak into the next. (Under gunicorn every
        # request has a context, and a `g`, of its own: nothing to clear.)
        names = vars(g._get_current_object())
        if names:
            for name in (
                "principal",
                "widget_member",
                "idempotency",
                "config_check",
                "audit_actor",
                "reports_source",
            ):
                names.pop(name, None)
        names["started"] = time.perf_counter()

    register_error_handlers(app, rollback=transaction.discard)
    inputs.init_app(app)  # before the transaction reads the body to fingerprint it
    # The request's one transaction: a stored Idempotency-Key answer replayed before the view,
    # the commit (or rollback) after it.
    transaction.init_app(app, caller=lambda: authenticate().audit_name)

    # The labelled children of the request metrics, by (method, route, status): a bounded set,
    # as routes and statuses are; looking them up in prometheus_client costs more per request.
    children: dict[tuple, tuple] = {}

    @app.after_request
    def _observe(response):
        req = request._get_current_object()
        rule = req.url_rule
        labels = (req.method, rule.rule if rule else "unmatched", response.status_code)
        counter_and_histogram = children.get(labels)
        if counter_and_histogram is None:
            counter_and_histogram = children[labels] = (
                REQUESTS.labels(*labels),
                LATENCY.labels(labels[1]),
            )
        counter, histogram = counter_and_histogram
        counter.inc()
        started = g.get("started")
        if started is not None:
            histogram.observe(time.perf_counter() - started)
        return response


def register_hooks(app: Flask) -> None:
    """The domains join the core here and nowhere else: the order flow, the jobs and the demo
    data as ordered lists, then each domain's `init_app` (`loyalty.wiring`)."""
    from loyalty import wiring

    wiring.init_app(app)


def register_cli(app: Flask) -> None:
    from connectors.cli import connectors_cli
    from loyalty.cli import api_keys_cli, loyalty_cli

    app.cli.add_command(api_keys_cli)
    app.cli.add_command(loyalty_cli)
    app.cli.add_command(connectors_cli)
