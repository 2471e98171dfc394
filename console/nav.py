"""The console's navigation: one entry per page, shown to the admins who may open it."""

from dataclasses import dataclass

from flask import current_app, request, url_for
from flask_login import current_user

from console.accounts import may


@dataclass(frozen=True)
class Entry:
    label: str
    endpoint: str  # the page's index view
    permission: str  # console.accounts.PERMISSIONS


NAV = (
    Entry("Members", "console.members.index", "members.view"),
    Entry("Tiers", "console.tiers.index", "program.view"),
    Entry("Earning rules", "console.rules.index", "program.view"),
    Entry("Rewards", "console.rewards.index", "program.view"),
    Entry("Settings", "console.settings.index", "program.view"),
)


def entries() -> list[dict]:
    """The entries the signed-in admin may open: label, url, and whether it is this page's."""
    if not current_user.is_authenticated:
        return []
    here = request.blueprint or ""
    shown = []
    for entry in NAV:
        if entry.endpoint not in current_app.view_functions:
            continue
        if not may(current_user.role, entry.permission):
            continue
        blueprint = entry.endpoint.rsplit(".", 1)[0]
        shown.append(
            {
                "label": entry.label,
                "url": url_for(entry.endpoint),
                "active": here == blueprint or here.startswith(blueprint + "."),
            }
        )
    return shown


def home_url() -> str:
    """The first page the signed-in admin may open (their profile when none)."""
    for entry in entries():
        return entry["url"]
    return url_for("console.profile")
