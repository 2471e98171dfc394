"""The email channel's settings from the environment."""

import pytest

from loyalty.config import ConfigError, email_settings


def test_off_without_smtp_host_and_from_required_with_it():
    assert email_settings({})["SMTP_HOST"] == ""
    with pytest.raises(ConfigError, match="EMAIL_FROM"):
        email_settings({"SMTP_HOST": "smtp.example.com"})
    on = email_settings({
        "SMTP_HOST": "smtp.example.com", "SMTP_PORT": "2525", "SMTP_STARTTLS": "false",
        "EMAIL_FROM": "Shop <rewards@shop.example.com>", "EMAIL_PROGRAM_NAME": "Shop Club",
    })  # fmt: skip
    assert (on["SMTP_PORT"], on["SMTP_STARTTLS"], on["EMAIL_PROGRAM_NAME"]) == (
        2525, False, "Shop Club",
    )  # fmt: skip
    assert email_settings({"SMTP_HOST": "h", "EMAIL_FROM": "a@b"})["SMTP_STARTTLS"] is True
