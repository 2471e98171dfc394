"""A real SMTP server on 127.0.0.1 (aiosmtpd in a thread) that keeps what arrives, and the
app's email channel pointed at it."""

import email
import email.policy
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller

SETTINGS = ("SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS",
            "EMAIL_FROM", "EMAIL_PROGRAM_NAME", "EMAIL_RETRY_SECONDS")  # fmt: skip
SENDER = "rewards@shop.example.com"
PROGRAM = "Maison Rewards"


@dataclass
class Arrived:
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return str(self.message["To"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return body.get_content()

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")


class _Handler:
    def __init__(self):
        self.arrived: list[Arrived] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.arrived.append(Arrived(list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SMTPServer:
    """Started and stopped at will on one port (a server that is down, then up again)."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.handler = _Handler()
        self.controller: Controller | None = None

    def start(self) -> "SMTPServer":
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def arrived(self) -> list[Arrived]:
        with self.handler.lock:
            return list(self.handler.arrived)

    def to(self, address: str) -> list[Arrived]:
        return [a for a in self.arrived if a.envelope_to == [address]]


@contextmanager
def mail_channel(app, port: int):
    """The app's email channel on, to 127.0.0.1:`port`; the settings restored after."""
    before = {name: app.config[name] for name in SETTINGS}
    app.config.update(
        SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_USERNAME="", SMTP_PASSWORD="",
        SMTP_STARTTLS=False, EMAIL_FROM=SENDER, EMAIL_PROGRAM_NAME=PROGRAM,
        EMAIL_RETRY_SECONDS=60.0,
    )  # fmt: skip
    try:
        yield
    finally:
        app.config.update(before)
