"""Gift cards in the console: search and list, the card page, issuing a card (its code shown
once), disabling, adjusting with a reason (views), the forms and how they become the API's
bodies (forms), the reads the card page needs beyond the API's services (queries), and a
card's transactions in words (words)."""

from console.giftcards.views import bp

__all__ = ["bp"]
