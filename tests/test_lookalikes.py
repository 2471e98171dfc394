"""One mailbox, one spelling; lookalikes told apart, not merged."""

import pytest

from loyalty.lookalikes import email_skeleton, normalize_email, suspicious, suspicious_email


@pytest.mark.parametrize(
    ("email", "mailbox"),
    [
        ("Ana.Smith+promo@GoogleMail.com", "anasmith@gmail.com"),
        ("  Bea@Example.COM ", "bea@example.com"),
        ("ana@ｇmail.com", "ana@gmail.com"),  # full-width g
        ("ＢＥＡ@ＥＸＡＭＰＬＥ.ＣＯＭ", "bea@example.com"),
        ("STRASSE@Example.com", "strasse@example.com"),
        ("straße@example.com", "strasse@example.com"),  # casefold, not lower
        ("ana@Bücher.de", "ana@xn--bcher-kva.de"),
        ("ana@xn--bcher-kva.de", "ana@xn--bcher-kva.de"),
        ("ANA@GMAİL.COM", "ana@xn--gmail-bgd.com"),  # another (IDN) domain, not gmail.com
        ("аna@gmail.com", "аna@gmail.com"),  # Cyrillic а: another mailbox
        ("ana@bad_domain.çom", "ana@bad_domain.çom"),  # IDNA refuses it: kept as folded
        ("no-at-sign", None),
        (None, None),
    ],
)
def test_normalize_email(email, mailbox):
    assert normalize_email(email) == mailbox


@pytest.mark.parametrize(
    ("email", "looks_like", "is_suspicious"),
    [
        ("аna@gmail.com", "ana@gmail.com", True),
        ("ANA@GMAİL.COM", "ana@gmail.com", True),
        ("ana.smith@gmаil.com", "anasmith@gmail.com", True),  # a Cyrillic а in the domain
        ("josé@bücher.de", "jose@bucher.de", False),  # one script per word: a real name
        ("анна@mail.ru", "aʜʜa@mail.ru", False),  # Cyrillic throughout
        ("ana@gmail.com", "ana@gmail.com", False),
    ],
)
def test_lookalike_emails(email, looks_like, is_suspicious):
    normalized = normalize_email(email)
    assert email_skeleton(normalized) == looks_like
    assert suspicious_email(normalized) is is_suspicious


@pytest.mark.parametrize(
    ("name", "is_suspicious"),
    [("Аna Smith", True), ("ANA SMİTH", True), ("Ana Smith", False), ("Анна Иванова", False),
     ("José Núñez", False), ("Ａｎａ Ｓｍｉｔｈ", False)],
)  # fmt: skip
def test_suspicious_names(name, is_suspicious):
    assert suspicious(name) is is_suspicious
