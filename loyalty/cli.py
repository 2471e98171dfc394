"""Command line: `flask --app wsgi api-keys ...` and `flask --app wsgi loyalty ...`."""

import sys
import time
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from loyalty import jobs as core_jobs
from loyalty.auth import SCOPES, ApiKey, create_api_key, revoke_api_key
from loyalty.extensions import db
from loyalty.hooks import hooks
from loyalty.ledger import find_drift
from loyalty.types import utcnow

api_keys_cli = AppGroup("api-keys", help="Server API keys.")
loyalty_cli = AppGroup("loyalty", help="Program operations: jobs, ledger checks, demo data.")


@api_keys_cli.command("create")
@click.option("--name", required=True)
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES))
def create_key(name, scopes):
    """Create a key; it is printed once, alone on the last line."""
    row, key = create_api_key(db.session, name, list(scopes))
    db.session.commit()
    click.echo(f"Created API key {row.id} ({', '.join(row.scopes)}). Store it now:", err=False)
    click.echo(key)


@api_keys_cli.command("list")
def list_keys():
    """Every key: id, prefix, name, scopes, created, revoked."""
    for row in db.session.scalars(select(ApiKey).order_by(ApiKey.id)):
        revoked = f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "active"
        click.echo(
            f"{row.id}\t{row.prefix}…\t{row.name}\t{','.join(row.scopes)}\t"
            f"created {row.created_at.isoformat()}\t{revoked}"
        )


@api_keys_cli.command("revoke")
@click.argument("key_id", type=int)
def revoke_key(key_id):
    """Revoke a key by id: refused by every worker as soon as it is committed."""
    row = revoke_api_key(db.session, key_id)
    if row is None:
        raise click.ClickException(f"No API key {key_id}.")
    db.session.commit()
    click.echo(f"Revoked API key {row.id} ({row.prefix}…); every worker refuses it now.")


def all_jobs() -> dict:
    """Every job by name, in the order `run-due` runs them (`loyalty.wiring.JOBS`)."""
    return hooks().jobs


def parse_now(value: str | None) -> datetime:
    if not value:
        return utcnow()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter("an ISO 8601 time, e.g. 2027-01-01T00:00:00Z") from exc
    if parsed.tzinfo is None:
        raise click.BadParameter("give an offset, e.g. 2027-01-01T00:00:00+00:00")
    return parsed


def run_job(name: str, now: datetime) -> int:
    job = all_jobs()[name]
    batch = core_jobs.batch_size(name)
    ranges = len(core_jobs.member_ranges(db.session(), batch)) or 1
    started = time.perf_counter()
    with click.progressbar(
        length=ranges, label=name, file=sys.stderr, show_eta=False
    ) as bar:  # a bar on a terminal, one line in logs
        changed = job(db.session, now, batch, bar.update)
    db.session.commit()
    click.echo(f"{name}: {changed} changed in {time.perf_counter() - started:.2f}s")
    return changed


@loyalty_cli.command("jobs")
@click.argument("name")
@click.option("--now", "now_text", help="Act as if it were this time (ISO 8601).")
def jobs_command(name, now_text):
    """Run a scheduled job: mature-points, expire-points, ..., or run-due for all of them."""
    names = list(all_jobs()) if name == "run-due" else [name]
    unknown = [n for n in names if n not in all_jobs()]
    if unknown:
        raise click.UsageError(f"unknown job {name!r}; one of: run-due, {', '.join(all_jobs())}")
    now = parse_now(now_text)
    for job_name in names:
        run_job(job_name, now)


@loyalty_cli.command("worker")
@click.option("--interval", default=60, show_default=True, help="Seconds between runs.")
@click.option("--once", is_flag=True, help="Run the due jobs once and exit.")
def worker(interval, once):
    """Run every job in a loop (what a scheduler or a systemd timer would do)."""
    while True:
        for job_name in all_jobs():
            try:
                run_job(job_name, utcnow())
            except Exception:  # keep the worker alive; the next run resumes where this stopped
                db.session.rollback()
                current_app.logger.exception("job %s failed", job_name)
        if once:
            return
        time.sleep(interval)


@loyalty_cli.command("verify-ledger")
def verify_ledger():
    """Recompute every balance from its entries — members' points, and each domain's own
    (gift cards) — and exit 1 listing any account that drifted."""
    drift = [
        f"member {d.member_id} ({d.customer_id}): stored available/pending/lifetime "
        f"{d.stored} != entries {d.computed}"
        for d in find_drift(db.session)
    ]
    for check in hooks().ledger_checks:
        drift.extend(check(db.session))
    for line in drift:
        click.echo(line)
    if drift:
        click.echo(f"{len(drift)} account(s) drifted", err=True)
        sys.exit(1)
    click.echo("ledger ok: every balance equals the sum of its entries")


VACUUM_AFTER = 10_000  # customers and members refreshed by hand, then the tables vacuumed


@loyalty_cli.command("reports-refresh")
@click.option("--rebuild", is_flag=True, help="Rebuild every aggregate from the orders.")
def reports_refresh(rebuild):
    """Bring the reports' aggregates up to date: recompute the customers and members whose
    orders changed (with --rebuild: all of them), JOB_BATCH_SIZE per transaction."""
    from loyalty.reports import aggregates

    batch = current_app.config["JOB_BATCH_SIZE"]
    started = time.perf_counter()
    with click.progressbar(
        length=aggregates.pending(db.session) or 1,
        label="reports-rebuild" if rebuild else "reports-refresh",
        file=sys.stderr,
        show_eta=False,
    ) as bar:
        run = aggregates.rebuild if rebuild else aggregates.refresh
        done = run(db.session, batch, progress=bar.update)
    if not rebuild and done >= VACUUM_AFTER:  # a rebuild vacuums itself
        aggregates.vacuum(db.session)
    click.echo(
        f"reports: {done} customers/members recomputed in {time.perf_counter() - started:.2f}s; "
        f"data as of {aggregates.data_as_of(db.session).isoformat()}"
    )


@loyalty_cli.command("verify-reports")
@click.option("--from", "start", help="Also compare retention from this time (ISO 8601).")
@click.option("--to", "end", help="... up to this one (default now).")
def verify_reports(start, end):
    """Compare the reports' aggregates and answers with a recomputation from the orders
    (refreshes nothing); exit 1 listing every difference."""
    from loyalty.reports.verify import default_periods, find_report_drift

    now = utcnow()
    periods = default_periods(db.session, now)
    if start:
        periods.append((parse_now(start), parse_now(end) if end else now))
    problems = find_report_drift(db.session, hooks().report_cohorts, periods, now)
    db.session.rollback()
    for line in problems:
        click.echo(line)
    if any(not line.startswith("note:") for line in problems):
        click.echo(f"{len(problems)} difference(s)", err=True)
        sys.exit(1)
    click.echo("reports ok: the aggregates equal a recomputation from the orders")


@loyalty_cli.command("reseal")
def reseal():
    """Seal every sealed value (webhook secrets, stored replies, gift card codes waiting in
    the email outbox) under the newest of SECRET_KEYS, so the older entries can then leave
    the list."""
    from loyalty.email.models import EmailMessage
    from loyalty.idempotency import IdempotencyRecord
    from loyalty.sealing import EMAIL_SECRET, IDEMPOTENT_REPLY, WEBHOOK_SECRET, reseal_column
    from loyalty.webhooks.models import WebhookEndpoint

    keys = current_app.config["SECRET_KEYS"]
    failed = 0
    for name, column, purpose in (
        ("webhook secrets", WebhookEndpoint.secret, WEBHOOK_SECRET),
        ("replaced webhook secrets", WebhookEndpoint.previous_secret, WEBHOOK_SECRET),
        ("stored replies", IdempotencyRecord.body, IDEMPOTENT_REPLY),
        ("queued email codes", EmailMessage.sealed, EMAIL_SECRET),
    ):
        done, unreadable = reseal_column(db.session, column, purpose, keys)
        db.session.commit()
        click.echo(f"{name}: {done} resealed, {unreadable} opened by no key")
        failed += unreadable
    if failed:
        sys.exit(1)


@loyalty_cli.command("seed-demo")
def seed_demo():
    """Add the demo program once (a second run changes nothing)."""
    from loyalty.seed import seed_demo_program

    if seed_demo_program(db.session, hooks()):
        db.session.commit()
        click.echo("Seeded the demo program.")
    else:
        click.echo("Demo program already seeded.")
