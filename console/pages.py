"""The console's pages: each a blueprint nested in the `console` blueprint (under /console).

A page's blueprint is named after its area ("members" → endpoints `console.members.*`,
URLs `/console/members...`); its nav entry is in console.nav.
"""

from console.audit import bp as audit
from console.blueprint import bp
from console.dashboard import bp as dashboard
from console.giftcards import bp as giftcards
from console.keys import bp as keys
from console.members import bp as members
from console.referrals import bp as referrals
from console.reports import bp as reports
from console.rewards import bp as rewards
from console.rules import bp as rules
from console.segment_awards import bp as segment_awards
from console.settings import bp as settings
from console.tiers import bp as tiers
from console.webhooks import bp as webhooks

PAGES = (
    dashboard, reports, members, referrals, giftcards, tiers, rules, rewards, settings,
    segment_awards, webhooks, keys, audit,
)  # fmt: skip

for page in PAGES:  # once, on import: before any app registers the console blueprint
    bp.register_blueprint(page)
