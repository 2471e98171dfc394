"""Views that set their own `Cache-Control`.

Every answer gets `Cache-Control: no-store` (see `LoyaltyFlask.process_response`) unless its
view is marked with `own_cache_control`: public content (the widget's script) says how long it
may be kept.
"""

from collections.abc import Callable
from typing import TypeVar

View = TypeVar("View", bound=Callable[..., object])


def own_cache_control(view: View) -> View:
    """Mark a view that sets its own `Cache-Control` (public content), so none is added."""
    view.own_cache_control = True  # type: ignore[attr-defined]  # a mark read with getattr
    return view
