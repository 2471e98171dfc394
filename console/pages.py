"""The console's pages: each a blueprint nested in the `console` blueprint (under /console).

A page's blueprint is named after its area ("members" → endpoints `console.members.*`,
URLs `/console/members...`); its nav entry is in console.nav.
"""

from console.blueprint import bp
from console.members import bp as members
from console.rewards import bp as rewards
from console.rules import bp as rules
from console.segment_awards import bp as segment_awards
from console.settings import bp as settings
from console.tiers import bp as tiers

PAGES = (members, tiers, rules, rewards, settings, segment_awards)

for page in PAGES:  # once, on import: before any app registers the console blueprint
    bp.register_blueprint(page)
