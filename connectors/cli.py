"""Command line: `flask --app wsgi connectors import PLATFORM FILE`."""

import importlib
import os
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup

from connectors import backfill
from loyalty.extensions import db
from loyalty.hooks import hooks

connectors_cli = AppGroup("connectors", help="Store connectors: order history imports.")

PLATFORMS = ("shopify", "woocommerce")


def platform_mapper(platform: str) -> backfill.Mapper:
    """The platform's own order mapping (`connectors.<platform>.events_from_order`)."""
    if platform not in PLATFORMS:
        raise click.UsageError(f"unknown platform {platform!r}; one of: {', '.join(PLATFORMS)}")
    mapper = getattr(importlib.import_module(f"connectors.{platform}"), "events_from_order", None)
    if mapper is None:
        raise click.ClickException(f"connectors.{platform} has no order mapping")
    return mapper


def run_import(
    mapper: backfill.Mapper, path: str, batch_size: int, label: str, *, platform: bool = False
) -> int:
    """Import the file with `mapper`, a progress bar on stderr and the summary on stdout;
    the exit status is 1 when anything was refused. A `platform`'s orders keep the first
    version of an event already taken (as its webhooks do; `backfill.import_lines`)."""
    started = time.perf_counter()
    with (
        open(path, "rb") as export,
        click.progressbar(
            length=os.fstat(export.fileno()).st_size, label=label, file=sys.stderr,
            show_eta=True,
        ) as bar,  # a bar on a terminal, one line in logs
    ):  # fmt: skip
        summary = backfill.import_lines(
            db.session(),
            hooks(),
            export,
            mapper,
            batch_size=batch_size,
            progress=bar.update,
            first_version_stands=platform,
        )
    for line in summary.lines():
        click.echo(line)
    click.echo(f"in {time.perf_counter() - started:.1f}s")
    return 1 if summary.refused else 0


@connectors_cli.command("import")
@click.argument("platform")
@click.argument("path", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None,
    help="Events per transaction [default: IMPORT_BATCH_SIZE].",
)  # fmt: skip
def import_command(platform, path, batch_size):
    """Import a platform's order export (JSON lines, orders as its API returns them) as
    historical order events; importing the same file again changes nothing."""
    mapper = platform_mapper(platform)
    batch_size = batch_size or current_app.config["IMPORT_BATCH_SIZE"]
    label = f"{platform} {os.path.basename(path)}"
    sys.exit(run_import(mapper, path, batch_size, label, platform=True))
