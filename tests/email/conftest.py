import pytest

from tests.email.smtp import SMTPServer, mail_channel


@pytest.fixture
def smtp(app):
    """A local SMTP server, and the app's email channel sending to it."""
    server = SMTPServer().start()
    try:
        with mail_channel(app, server.port):
            yield server
    finally:
        server.stop()
