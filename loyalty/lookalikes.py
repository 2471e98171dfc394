"""Text that only looks alike: one spelling per mailbox, and skeletons that expose lookalikes.

An email address is reduced to its mailbox: NFKC (the full-width `ｇ` is `g`), casefold (`ANA`
is `ana`), the domain in its IDNA ASCII form (UTS #46: `bücher.de` is `xn--bcher-kva.de`), then
the mailbox rules: no `+tag`; Gmail ignores dots and has two domains. ASCII addresses, nearly
all of them, take a shortcut that gives the same answer.

A lookalike is a different address, not another spelling: `аna@gmail.com` (a Cyrillic `а`) or
`ana@gmaİl.com` (`İ` folds to `i` plus a combining dot, a real IDN domain) may be real mailboxes
of someone who is not `ana@gmail.com`. So they are never merged; `skeleton` maps each character
to the Latin one it is confusable with (Unicode's confusables data, from
`confusable_homoglyphs`) and drops combining marks, and `suspicious` tells text that mixes a
script with characters made to pass for Latin — for the fraud rules to send to review.
"""

import unicodedata
from functools import cache

GMAIL_DOMAINS = {"gmail.com", "googlemail.com"}
LATIN = "LATIN"


def fold(text: str) -> str:
    """Compatibility forms and case folded away: `Ａｎａ` and `ANA` are `ana`."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


# The IDNA and confusables tables cost about 12 MB and 0.3 s to load: only text that is not
# ASCII loads them, so a process that never sees any never pays.


@cache
def _idna():
    import idna

    return idna


@cache
def _confusables():
    from confusable_homoglyphs import categories, confusables

    return categories, confusables


def _ascii_domain(domain: str) -> str:
    """The domain's IDNA form; a domain IDNA refuses (it can take no mail) stays as folded."""
    if domain.isascii():
        return domain
    idna = _idna()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return domain


def _unicode_domain(domain: str) -> str:
    if "xn--" not in domain:
        return domain
    idna = _idna()
    try:
        return idna.decode(domain)
    except idna.IDNAError:
        return domain


def normalize_email(email: str | None) -> str | None:
    """One mailbox, one spelling (see the module docstring); None for no address."""
    if not email or "@" not in email:
        return None
    local, _, domain = fold(email.strip()).rpartition("@")
    domain = _ascii_domain(domain)
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


@cache
def _latin_lookalike(char: str) -> str:
    """The Latin (preferably ASCII) text `char` is confusable with, or `char` itself."""
    if char.isascii():
        return char
    categories, confusables = _confusables()
    if categories.alias(char) == LATIN:
        return char
    found = confusables.confusables_data.get(char) or []
    candidates = [h["c"] for h in found if all(categories.alias(c) in (LATIN, "COMMON")
                                                for c in h["c"])]  # fmt: skip
    ascii_ones = [c for c in candidates if c.isascii()]
    return (ascii_ones or candidates or [char])[0]


def skeleton(text: str) -> str:
    """What `text` looks like: folded, each character as its Latin lookalike, marks dropped."""
    decomposed = unicodedata.normalize("NFD", fold(text))
    return "".join(
        _latin_lookalike(char)
        for char in decomposed
        if not unicodedata.category(char).startswith("M")
    )


def email_skeleton(normalized: str | None) -> str | None:
    """The mailbox a normalized address looks like (its domain read back from IDNA)."""
    if not normalized:
        return None
    local, _, domain = normalized.rpartition("@")
    if local.isascii() and "xn--" not in domain:
        return normalized
    return normalize_email(f"{skeleton(local)}@{skeleton(_unicode_domain(domain))}")


def suspicious_email(normalized: str | None) -> bool:
    """`suspicious` for a normalized address, its domain read back from IDNA."""
    if not normalized:
        return False
    local, _, domain = normalized.rpartition("@")
    return suspicious(f"{local}@{_unicode_domain(domain)}")


def _suspicious_word(word: str) -> bool:
    categories, _ = _confusables()
    scripts = categories.unique_aliases(word) - {"COMMON"}
    if "INHERITED" in scripts and len(scripts) > 1:
        # A combining mark that NFKC could not fuse into a letter (the dot of `İ` on `i`).
        return True
    return LATIN in scripts and len(scripts) > 1 and skeleton(word) != fold(word)


def suspicious(text: str | None) -> bool:
    """Does a word of `text` (an email's local part, domain labels; a name's words) mix Latin
    with characters that pass for Latin?"""
    if not text or text.isascii():
        return False
    words = fold(text).replace("@", " ").replace(".", " ").split()
    return any(_suspicious_word(word) for word in words if not word.isascii())
