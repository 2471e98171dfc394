"""The built-in email channel: the program's own messages to its members, for merchants
without an email tool of their own (the others drive theirs from the outbound webhooks).

A message is written to an outbox (`email_messages`) in the transaction of the change it
tells of, through `queue` (one member), `queue_to` (an address: a gift card's recipient) or
`queue_selected` (a set-based job: one INSERT ... SELECT); the `send-emails` job renders and
sends what is due over SMTP, with retries. Off (nothing is written) unless SMTP_HOST is set.
"""

from loyalty.email.service import enabled, queue, queue_selected, queue_to

__all__ = ["enabled", "queue", "queue_selected", "queue_to"]
