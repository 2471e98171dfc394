"""The reward catalog in the console: list, create, edit, retire (views), the form and how it
becomes the API's body (forms), the reads the pages need beyond the API's services (queries)."""

from console.rewards.views import bp

__all__ = ["bp"]
