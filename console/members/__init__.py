"""Members in the console: search and list, the member page, adjusting points, canceling
reward codes, erasure (views), the reads the pages need beyond the API's services (queries),
and ledger entries in words (activity)."""

from console.members.views import bp

__all__ = ["bp"]
