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
    group: str  # the heading it is listed under


# In the order shown; an entry whose page is not registered is left out.
NAV = (
    Entry("Dashboard", "console.dashboard.index", "reports.view", "Overview"),
    Entry("Reports", "console.reports.index", "reports.view", "Overview"),
    Entry("Members", "console.members.index", "members.view", "Customers"),
    Entry("Referrals", "console.referrals.index", "referrals.review", "Customers"),
    Entry("Gift cards", "console.giftcards.index", "giftcards.view", "Customers"),
    Entry("Tiers", "console.tiers.index", "program.view", "Program"),
    Entry("Earning rules", "console.rules.index", "program.view", "Program"),
    Entry("Rewards", "console.rewards.index", "program.view", "Program"),
    Entry("Settings", "console.settings.index", "program.view", "Program"),
    Entry("Webhooks", "console.webhooks.index", "webhooks.manage", "Developers"),
    Entry("API keys", "console.keys.index", "keys.manage", "Developers"),
    Entry("Audit log", "console.audit.index", "audit.view", "Developers"),
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
                "group": entry.group,
                "url": url_for(entry.endpoint),
                "active": here == blueprint or here.startswith(blueprint + "."),
            }
        )
    return shown


def grouped(shown: list[dict]) -> list[dict]:
    """The entries under their headings, both in NAV order: [{name, entries}, ...]."""
    groups: list[dict] = []
    for entry in shown:
        if not groups or groups[-1]["name"] != entry["group"]:
            groups.append({"name": entry["group"], "entries": []})
        groups[-1]["entries"].append(entry)
    return groups


def home_url() -> str:
    """The first page the signed-in admin may open (their profile when none)."""
    for entry in entries():
        return entry["url"]
    return url_for("console.profile")
