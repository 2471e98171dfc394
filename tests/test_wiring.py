"""How the domains join the core: one module (`loyalty.wiring`), ordered lists, typed hooks;
and the request's transaction owned by `loyalty.transaction` alone."""

import ast
import collections.abc
import typing
from pathlib import Path

from sqlalchemy import select

from loyalty import wiring
from loyalty.audit import AuditLog
from loyalty.hooks import Hooks, hooks

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("loyalty", "referrals", "rewards", "connectors")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at any depth (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def test_only_create_app_imports_the_wiring():
    importers = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if any(module == "loyalty.wiring" or module.startswith("loyalty.wiring.")
               for _line, module in imported_modules(path))
        or "from loyalty import wiring" in path.read_text()
    ]  # fmt: skip
    assert importers == ["loyalty/__init__.py"]


def test_the_app_runs_the_wiring_lists_in_their_order(app):
    with app.app_context():
        plugged = hooks()
    assert [type(h) for h in plugged.order_handlers] == [type(h) for h in wiring.ORDER_HANDLERS]
    assert list(plugged.jobs.items()) == wiring.JOBS
    assert plugged.demo_seed == wiring.DEMO_SEEDS
    assert len({name for name, _job in wiring.JOBS}) == len(wiring.JOBS)  # no name twice
    # The senders come last: they send what the jobs before them reported or queued.
    assert [name for name, _job in wiring.JOBS[-2:]] == ["deliver-webhooks", "send-emails"]


def test_run_due_runs_the_jobs_in_the_wiring_order(runner):
    result = runner.invoke(args=["loyalty", "jobs", "run-due", "--now", "2026-01-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    ran = [line.split(":")[0] for line in result.output.splitlines() if " changed in " in line]
    assert ran == [name for name, _job in wiring.JOBS]


def test_every_hook_is_typed_by_a_protocol():
    """No plug point is a bare `Callable`: each names a Protocol saying what it is called with."""

    def bare(annotation) -> bool:
        if annotation is collections.abc.Callable or typing.get_origin(annotation) is (
            collections.abc.Callable
        ):
            return True
        return any(bare(arg) for arg in typing.get_args(annotation))

    untyped = [name for name, hint in typing.get_type_hints(Hooks).items() if bare(hint)]
    assert untyped == []


def test_no_route_commits_or_rolls_back():
    """Routes never end the transaction: `loyalty.transaction` does, after the view."""
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("routes.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr in ("commit", "rollback"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_revoking_an_api_key_from_the_command_line_is_audited(runner, keys, session):
    from loyalty.auth import ApiKey

    key_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "test-storefront"))
    result = runner.invoke(args=["api-keys", "revoke", str(key_id)])
    assert result.exit_code == 0, result.output
    [row] = session.scalars(select(AuditLog).where(AuditLog.action == "api_key.revoke")).all()
    assert (row.actor, row.object_id, row.before) == ("cli", str(key_id), {"revoked_at": None})
    assert row.after["revoked_at"] is not None
