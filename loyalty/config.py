"""Configuration from the environment, with development defaults.

Every setting an operator may change is read here and nowhere else.
"""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SECRET = "dev-secret-change-me"  # noqa: S105 - refused in production, see check_production


# The variables settings are read from: os.environ, or a plain dict in tests.
Env = Mapping[str, str]


class ConfigError(RuntimeError):
    pass


def _list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _bool(value: str | None, *, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"not a boolean: {value!r} (use true or false)")


def fastsql_setting(env: Env) -> bool:
    """FASTSQL: the hot statements on psycopg's cursor (loyalty/fastsql.py); 0 runs them
    through SQLAlchemy's own execution (docs/performance.md)."""
    return _bool(env.get("FASTSQL"), default=True)


def secret_keys(env: Env | None = None) -> list[str]:
    """SECRET_KEYS as a list, newest last (the development secret when unset)."""
    source: Env = os.environ if env is None else env
    return _list(source.get("SECRET_KEYS")) or [DEFAULT_SECRET]


# At most this many members per transaction, unless JOB_BATCH_SIZES names the job: the jobs
# whose ranges keep members' rows locked longest (order events wait for those rows); smaller
# ranges, shorter waits (docs/operations.md).
DEFAULT_JOB_BATCH_SIZES: dict[str, int] = {"mature-points": 1000}


def job_batch_sizes(value: str | None) -> dict[str, int]:
    """JOB_BATCH_SIZES, "name=size,name=size": a job's own batch size over JOB_BATCH_SIZE."""
    sizes = {}
    for item in _list(value):
        name, equals, size = (part.strip() for part in item.partition("="))
        if not name or not equals or not size.isdigit() or not 1 <= int(size) <= 10**6:
            raise ConfigError(
                f"JOB_BATCH_SIZES: {item!r} is not name=size (a job's name, 1 to 1000000)"
            )
        sizes[name] = int(size)
    return sizes


def _bounded(env: Env, name: str, default: int, maximum: int) -> int:
    raw = env.get(name)
    value = default if raw is None or raw.strip() == "" else int(raw)
    if not 1 <= value <= maximum:
        raise ConfigError(f"{name} must be between 1 and {maximum}, not {value}")
    return value


def _positive(env: Env, name: str, default: int) -> int:
    return _bounded(env, name, default, 10**6)


def psycopg_url(url: str) -> str:
    """Accept the usual postgres:// spellings and always use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_database_url(instance_path: str) -> str:
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / 'loyalty.sqlite3'}"


def from_environment(instance_path: str, environ: Env | None = None) -> dict:
    env: Env = os.environ if environ is None else environ
    database_url = psycopg_url(env.get("DATABASE_URL") or default_database_url(instance_path))
    keys = secret_keys(env)
    return {
        "LOYALTY_ENV": env.get("LOYALTY_ENV", "development"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Newest last: new tokens are signed (and values sealed) with it, all are accepted.
        "SECRET_KEYS": keys,
        "SECRET_KEY": keys[-1],
        "STRIPE_API_KEY": env.get("STRIPE_API_KEY", ""),
        "STRIPE_WEBHOOK_SECRETS": _list(env.get("STRIPE_WEBHOOK_SECRETS")),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE", ""),
        # Secrets of the store's WooCommerce webhooks (comma-separated): any may sign a
        # delivery, so a new secret can be set in WooCommerce before the old one is dropped.
        "WOOCOMMERCE_WEBHOOK_SECRETS": _list(env.get("WOOCOMMERCE_WEBHOOK_SECRETS")),
        # Shopify signs webhooks with the app's secret; during a rotation both are listed.
        "SHOPIFY_WEBHOOK_SECRETS": _list(env.get("SHOPIFY_WEBHOOK_SECRETS")),
        "REDIS_URL": env.get("REDIS_URL", ""),
        **rate_limit_settings(env),
        **store_code_settings(env),
        **console_settings(env),
        "LOYALTY_PUBLIC_URL": env.get("LOYALTY_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/"),
        "WIDGET_TOKEN_MAX_AGE": int(env.get("WIDGET_TOKEN_MAX_AGE", "900")),
        # Per widget token's member on /v1/me (`limits` syntax, e.g. "120/minute;1000/hour").
        "WIDGET_RATE_LIMIT": env.get("WIDGET_RATE_LIMIT", "120/minute"),
        "WIDGET_REDEEM_RATE_LIMIT": env.get("WIDGET_REDEEM_RATE_LIMIT", "10/minute"),
        # Requests that take a gift card code (lookup, holds), per shopper address and per card;
        # failures (any code that is not a live card) within the window before a lockout.
        "GIFT_CARD_LOOKUPS_PER_MINUTE": int(env.get("GIFT_CARD_LOOKUPS_PER_MINUTE", "30")),
        "GIFT_CARD_MAX_FAILURES": int(env.get("GIFT_CARD_MAX_FAILURES", "10")),
        "GIFT_CARD_FAILURE_WINDOW_MINUTES": int(env.get("GIFT_CARD_FAILURE_WINDOW_MINUTES", "15")),
        "GIFT_CARD_LOCKOUT_MINUTES": int(env.get("GIFT_CARD_LOCKOUT_MINUTES", "15")),
        # The same per API key: a store-wide ceiling, far above one shopper's, against guesses
        # spread over many addresses.
        "GIFT_CARD_KEY_LOOKUPS_PER_MINUTE": int(env.get("GIFT_CARD_KEY_LOOKUPS_PER_MINUTE", "600")),
        "GIFT_CARD_KEY_MAX_FAILURES": int(env.get("GIFT_CARD_KEY_MAX_FAILURES", "300")),
        # Share link visits (`GET /r/<code>`) per client (IPv4 address or IPv6 /64), and the
        # window in which one client's repeat visits of one link are one click (0: none).
        "REFERRAL_CLICK_RATE_LIMIT": env.get("REFERRAL_CLICK_RATE_LIMIT", "30/minute"),
        "REFERRAL_CLICK_DEDUP_SECONDS": int(env.get("REFERRAL_CLICK_DEDUP_SECONDS", "1800")),
        "IDEMPOTENCY_KEY_TTL_HOURS": int(env.get("IDEMPOTENCY_KEY_TTL_HOURS", "48")),
        "JOB_BATCH_SIZE": int(env.get("JOB_BATCH_SIZE", "5000")),
        "JOB_BATCH_SIZES": job_batch_sizes(env.get("JOB_BATCH_SIZES")),
        # The overview's points per month read the ledger's monthly rollup (off: a scan of the
        # ledger's entries, as exact and slower; the rollup is kept either way).
        "LEDGER_MONTHS_ROLLUP": _bool(env.get("LEDGER_MONTHS_ROLLUP"), default=True),
        # Reports on the primary first bring their aggregates up to date when at most this many
        # customers and members wait for the `refresh-reports` job (0: never; docs/reports.md).
        "REPORTS_REFRESH_ON_READ_MAX": int(env.get("REPORTS_REFRESH_ON_READ_MAX", "10000")),
        # On PostgreSQL, a report's transaction sorts and hashes in this much memory per
        # operation (SET LOCAL work_mem; empty: the server's own) and runs without JIT
        # compilation (REPORTS_JIT=false), which costs more than it saves on these queries.
        "REPORTS_WORK_MEM": env.get("REPORTS_WORK_MEM", "64MB").strip(),
        "REPORTS_JIT": _bool(env.get("REPORTS_JIT"), default=False),
        # A bonus award to a segment starts at once in a thread of the process that made it
        # (off: only the `segment-awards` job runs awards).
        "SEGMENT_AWARDS_IN_BACKGROUND": _bool(
            env.get("SEGMENT_AWARDS_IN_BACKGROUND"), default=True
        ),
        "IMPORT_BATCH_SIZE": int(env.get("IMPORT_BATCH_SIZE", "500")),
        # A batch of order events (POST /v1/events/batch, the history import) is first run
        # without a savepoint per event (off: each event under its own from the start).
        "EVENT_BATCH_FAST_PATH": _bool(env.get("EVENT_BATCH_FAST_PATH"), default=True),
        # A batch's order events of the common shape are validated by a fast path that gives
        # what the schema gives (off: each by marshmallow; `orders.schemas.load_event`).
        "EVENT_FAST_VALIDATION": _bool(env.get("EVENT_FAST_VALIDATION"), default=True),
        # Python's cyclic garbage collector is paused while a batch of events runs
        # (`orders.batch.collector_paused`).
        "EVENT_BATCH_GC_PAUSE": _bool(env.get("EVENT_BATCH_GC_PAUSE"), default=True),
        # Larger request bodies are refused (413) before they are read. An order.paid at the
        # schema's limits (500 lines) is about 200 KB.
        "MAX_CONTENT_LENGTH": int(env.get("MAX_BODY_BYTES", str(1024 * 1024))),
        # JSON bodies: deeper nesting, or an integer of more digits, is a 422 (loyalty/inputs.py).
        # 20 digits hold every 64-bit integer; our deepest body is about 5 levels.
        "MAX_JSON_DEPTH": _positive(env, "MAX_JSON_DEPTH", 32),
        "MAX_JSON_INTEGER_DIGITS": _positive(env, "MAX_JSON_INTEGER_DIGITS", 20),
        # The most one order (lines after discounts, shipping and tax) and one line
        # (quantity × unit price) may be worth, in minor units. Sums of orders then stay far
        # from a BIGINT's range.
        "MAX_ORDER_AMOUNT": _bounded(env, "MAX_ORDER_AMOUNT", 100_000_000_000, 10**15),
        # How long a worker may keep API keys, program settings, earning rules and webhook
        # subscriptions it read (see loyalty/cache.py). A change is in force everywhere as soon
        # as its request answers, whatever this is; it bounds memory and work per entry. 0: off.
        "CONFIG_CACHE_SECONDS": float(env.get("CONFIG_CACHE_SECONDS", "5")),
        # Retry-After (whole seconds) of the 503 answered when the database is briefly
        # unavailable (restarting, a connection cut, pool exhausted).
        "DATABASE_RETRY_AFTER_SECONDS": int(env.get("DATABASE_RETRY_AFTER_SECONDS", "1")),
        # `points.expiring` webhooks go out this many days before inactivity expiry.
        "POINTS_EXPIRY_WARNING_DAYS": int(env.get("POINTS_EXPIRY_WARNING_DAYS", "7")),
        # Outbound webhooks (loyalty/webhooks/delivery.py): deliveries claimed per round, the
        # HTTP timeout, attempts before giving up, and the backoff (doubling, capped).
        "WEBHOOK_BATCH_SIZE": int(env.get("WEBHOOK_BATCH_SIZE", "50")),
        "WEBHOOK_TIMEOUT_SECONDS": float(env.get("WEBHOOK_TIMEOUT_SECONDS", "5")),
        "WEBHOOK_MAX_ATTEMPTS": int(env.get("WEBHOOK_MAX_ATTEMPTS", "12")),
        "WEBHOOK_RETRY_SECONDS": float(env.get("WEBHOOK_RETRY_SECONDS", "30")),
        "WEBHOOK_RETRY_MAX_SECONDS": float(env.get("WEBHOOK_RETRY_MAX_SECONDS", "21600")),
        # After a secret rotation the old secret signs beside the new one this long (24 h).
        "WEBHOOK_SECRET_OVERLAP_SECONDS": int(env.get("WEBHOOK_SECRET_OVERLAP_SECONDS", "86400")),
        # purge-webhooks forgets messages older than this once each of their deliveries is done.
        "WEBHOOK_RETENTION_DAYS": int(env.get("WEBHOOK_RETENTION_DAYS", "30")),
        # `reward.code_expiring` goes out this many days before a reward code expires (0: never).
        "REWARD_CODE_EXPIRY_WARNING_DAYS": int(env.get("REWARD_CODE_EXPIRY_WARNING_DAYS", "3")),
        # `gift_card.low_balance` once a capture leaves a card's balance below this (minor
        # units; 0: never), once per crossing.
        "GIFT_CARD_LOW_BALANCE": int(env.get("GIFT_CARD_LOW_BALANCE", "1000")),
        # `member.lapsing` when a member's last paid order is this many days old (0: never).
        "MEMBER_LAPSE_DAYS": int(env.get("MEMBER_LAPSE_DAYS", "0")),
        # How old a custom action may be when reported (its caps count by when it happened).
        "ACTION_MAX_AGE_DAYS": int(env.get("ACTION_MAX_AGE_DAYS", "7")),
        **email_settings(env),
        **reports_replica_settings(env),
        # `Authorization: Bearer <token>` to scrape /metrics; unset: open outside production,
        # closed (403) in production.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        # The hot statements on psycopg's cursor instead of SQLAlchemy's execution path; off
        # (FASTSQL=0), every statement runs through `Connection.execute` (docs/performance.md).
        "FASTSQL": fastsql_setting(env),
        # On PostgreSQL, an order event of a customer who is not a member yet inserts the
        # member in the statement that claims the event and inserts the order; off
        # (FAST_ENROLLMENT=0), enrolment runs as its own statements first
        # (docs/performance.md, "First orders").
        "FAST_ENROLLMENT": _bool(env.get("FAST_ENROLLMENT"), default=True),
        # `loyalty seed-demo` adds two years of demo orders, referrals and redemptions (so the
        # console's dashboard and reports show something); 0 seeds only the demo program.
        "DEMO_HISTORY": _bool(env.get("DEMO_HISTORY"), default=True),
        # May webhooks go to loopback, private, link-local (cloud metadata) or other internal
        # addresses? Off in production (no request forgery into the operator's network), on
        # elsewhere so a receiver on localhost works while developing.
        "WEBHOOK_ALLOW_PRIVATE": _bool(
            env.get("WEBHOOK_ALLOW_PRIVATE"),
            default=env.get("LOYALTY_ENV", "development") != "production",
        ),
    }


def email_settings(env: Env) -> dict:
    """The built-in email channel (loyalty/email): off unless SMTP_HOST is set."""
    host = env.get("SMTP_HOST", "").strip()
    sender = env.get("EMAIL_FROM", "").strip()
    if host and not sender:
        raise ConfigError("EMAIL_FROM must be set with SMTP_HOST (the address mail is from)")
    return {
        "SMTP_HOST": host,
        "SMTP_PORT": int(env.get("SMTP_PORT", "587") or "587"),
        "SMTP_USERNAME": env.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool(env.get("SMTP_STARTTLS"), default=True),
        "SMTP_TIMEOUT_SECONDS": float(env.get("SMTP_TIMEOUT_SECONDS", "10")),
        "EMAIL_FROM": sender,
        # The name the messages give the program ("Your points at <name>").
        "EMAIL_PROGRAM_NAME": env.get("EMAIL_PROGRAM_NAME", "").strip() or "Rewards",
        # Messages sent per round of `send-emails`, attempts before giving up, backoff.
        "EMAIL_BATCH_SIZE": int(env.get("EMAIL_BATCH_SIZE", "50")),
        "EMAIL_MAX_ATTEMPTS": int(env.get("EMAIL_MAX_ATTEMPTS", "12")),
        "EMAIL_RETRY_SECONDS": float(env.get("EMAIL_RETRY_SECONDS", "60")),
        "EMAIL_RETRY_MAX_SECONDS": float(env.get("EMAIL_RETRY_MAX_SECONDS", "21600")),
    }


REPLICA_FALLBACKS = ("primary", "error")


def reports_replica_settings(env: Env) -> dict:
    """Reports, exports of reports and their CSV downloads on a PostgreSQL streaming replica
    (loyalty/reports/source.py, docs/operations.md "A read replica for reports")."""
    url = psycopg_url(env.get("REPORTS_DATABASE_URL", "").strip())
    if url and not url.startswith("postgresql+psycopg://"):
        raise ConfigError("REPORTS_DATABASE_URL must be a PostgreSQL URL (postgresql://...)")
    fallback = env.get("REPORTS_REPLICA_FALLBACK", "").strip().lower() or "primary"
    if fallback not in REPLICA_FALLBACKS:
        raise ConfigError("REPORTS_REPLICA_FALLBACK must be primary or error")
    max_lag_raw = env.get("REPORTS_REPLICA_MAX_LAG_SECONDS", "").strip()
    max_lag = float(max_lag_raw) if max_lag_raw else None
    if max_lag is not None and not max_lag > 0:
        raise ConfigError("REPORTS_REPLICA_MAX_LAG_SECONDS must be above 0 (unset: no limit)")
    retry = float(env.get("REPORTS_REPLICA_RETRY_SECONDS", "").strip() or "5")
    if not 0 <= retry <= 3600:
        raise ConfigError("REPORTS_REPLICA_RETRY_SECONDS must be between 0 and 3600")
    return {
        # Unset: reports read the primary (DATABASE_URL), as everything else does.
        "REPORTS_DATABASE_URL": url,
        # When the replica can't be reached, or is further behind than the maximum lag:
        # `primary` answers from the primary (and says so), `error` answers 503.
        "REPORTS_REPLICA_FALLBACK": fallback,
        "REPORTS_REPLICA_MAX_LAG_SECONDS": max_lag,
        # After a failed connection the replica is left alone this long (reports go straight
        # to the fallback), so a replica that is down costs one connection attempt, not one
        # per report.
        "REPORTS_REPLICA_RETRY_SECONDS": retry,
        # libpq's connect_timeout towards the replica (whole seconds, at least 2).
        "REPORTS_REPLICA_CONNECT_TIMEOUT_SECONDS": _bounded(
            env, "REPORTS_REPLICA_CONNECT_TIMEOUT_SECONDS", 2, 60
        ),
    }


def store_code_settings(env: Env) -> dict:
    """The store platforms' Admin APIs, where reward codes become the store's discount codes
    (connectors/discounts.py), and how the `sync-store-codes` job calls them."""
    woo_url = env.get("WOOCOMMERCE_URL", "").strip().rstrip("/")
    if woo_url and not woo_url.startswith("https://") and not _loopback_http(woo_url):
        # Basic auth sends the key and secret with every request: never over plain HTTP.
        raise ConfigError("WOOCOMMERCE_URL must be https:// (http only to a loopback address)")
    shop = env.get("SHOPIFY_SHOP", "").strip()
    if shop and not _HOST_NAME.fullmatch(shop):
        raise ConfigError("SHOPIFY_SHOP must be the shop's domain (example.myshopify.com)")
    shopify_base = env.get("SHOPIFY_API_BASE", "").strip().rstrip("/")
    if (
        shopify_base
        and not shopify_base.startswith("https://")
        and not _loopback_http(shopify_base)
    ):  # the Admin token goes with every call
        raise ConfigError("SHOPIFY_API_BASE must be https:// (http only to a loopback address)")
    return {
        # The shop's domain (`example.myshopify.com`) and an Admin API access token with the
        # write_discounts scope; SHOPIFY_API_BASE replaces https://<shop> (a local fake).
        "SHOPIFY_SHOP": shop,
        "SHOPIFY_ADMIN_TOKEN": env.get("SHOPIFY_ADMIN_TOKEN", ""),
        "SHOPIFY_API_BASE": shopify_base,
        "SHOPIFY_API_VERSION": env.get("SHOPIFY_API_VERSION", "2026-01"),
        # The site's address and a REST API key pair with read/write access.
        "WOOCOMMERCE_URL": woo_url,
        "WOOCOMMERCE_KEY": env.get("WOOCOMMERCE_KEY", ""),
        "WOOCOMMERCE_SECRET": env.get("WOOCOMMERCE_SECRET", ""),
        # Platform calls claimed per round, their timeout, attempts before a code is `failed`,
        # and the backoff between attempts (doubling, capped); a platform's Retry-After wins.
        "STORE_CODES_BATCH_SIZE": _positive(env, "STORE_CODES_BATCH_SIZE", 20),
        "STORE_CODES_TIMEOUT_SECONDS": float(env.get("STORE_CODES_TIMEOUT_SECONDS", "10")),
        "STORE_CODES_MAX_ATTEMPTS": _positive(env, "STORE_CODES_MAX_ATTEMPTS", 8),
        "STORE_CODES_RETRY_SECONDS": float(env.get("STORE_CODES_RETRY_SECONDS", "30")),
        "STORE_CODES_RETRY_MAX_SECONDS": float(env.get("STORE_CODES_RETRY_MAX_SECONDS", "3600")),
    }


_HOST_NAME = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def _loopback_http(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return url.startswith("http://") and (host in ("localhost", "::1") or host.startswith("127."))


def console_settings(env: Env) -> dict:
    """The admin console (console/): its session cookie, idle timeout and sign-in lockout."""
    production = env.get("LOYALTY_ENV", "development") == "production"
    return {
        # The name shown in the console's header.
        "CONSOLE_PROGRAM_NAME": env.get("CONSOLE_PROGRAM_NAME", "Loyalty program"),
        "CONSOLE_COOKIE_NAME": env.get("CONSOLE_COOKIE_NAME", "console_session"),
        # Secure cookies go over HTTPS only: on in production, off elsewhere so
        # http://127.0.0.1 works while developing.
        "CONSOLE_COOKIE_SECURE": _bool(env.get("CONSOLE_COOKIE_SECURE"), default=production),
        # A session not used for this long ends (the admin signs in again).
        "CONSOLE_IDLE_MINUTES": _bounded(env, "CONSOLE_IDLE_MINUTES", 30, 7 * 24 * 60),
        # Failed sign-ins within the window, per account (email) and per client address
        # (IPv4 address or IPv6 /64), before sign-in is refused there until the oldest
        # failure is older than the window.
        "CONSOLE_SIGN_IN_MAX_FAILURES": _positive(env, "CONSOLE_SIGN_IN_MAX_FAILURES", 5),
        "CONSOLE_SIGN_IN_ADDRESS_MAX_FAILURES": _positive(
            env, "CONSOLE_SIGN_IN_ADDRESS_MAX_FAILURES", 20
        ),
        "CONSOLE_SIGN_IN_WINDOW_MINUTES": _positive(env, "CONSOLE_SIGN_IN_WINDOW_MINUTES", 15),
    }


def rate_limit_settings(env: Env) -> dict:
    """Where rate-limit counters live (see loyalty/ratelimit): Redis when `REDIS_URL` is set."""
    return {
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), default=True),
        "RATELIMIT_STORAGE_URI": (
            env.get("RATELIMIT_STORAGE_URI") or env.get("REDIS_URL") or "memory://"
        ),
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "loyalty-limits"),
        # An unreachable Redis must not hold requests up; after a failure the counters stay
        # where they would be without Redis for this long before Redis is tried again.
        "RATELIMIT_STORAGE_TIMEOUT_SECONDS": float(
            env.get("RATELIMIT_STORAGE_TIMEOUT_SECONDS", "0.5")
        ),
        "RATELIMIT_STORAGE_RETRY_SECONDS": float(env.get("RATELIMIT_STORAGE_RETRY_SECONDS", "5")),
    }


def check_production(config: dict) -> None:
    """Refuse to start in production with a secret anyone can read in this repository."""
    if config["LOYALTY_ENV"] != "production":
        return
    if DEFAULT_SECRET in config["SECRET_KEYS"] or any(len(k) < 32 for k in config["SECRET_KEYS"]):
        raise ConfigError(
            "LOYALTY_ENV=production needs SECRET_KEYS set to random values of 32+ characters"
        )
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Allowed, but worth saying: production is meant to run on PostgreSQL.
        pass
