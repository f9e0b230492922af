"""redact() in linear time, and excerpt(): cut first, then mask (issue 9, item 3).

No timings are asserted: the patterns are linear by construction (no quantifier gives back
what another rescans; see _redact.py). These tests check that huge adversarial inputs are
handled, that the linear JWT pattern masks exactly what the old, quadratic one did, and that
an excerpt never shows a piece of a secret its cut split.
"""
from __future__ import annotations

import random
import re

import pytest

from sfjwt_ext._internal.redact import JWT_MASK, PEM_MASK, excerpt, redact

# The pattern before issue 9 (quadratic on long runs of base64url text): the oracle.
OLD_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_\-]*\.eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*")

TOKEN = "00D5g000004abcd!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdWXYZ"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiIzTVZHOSIsInN1YiI6ImFubkBhY21lLmNvbSJ9."
    "Zm9vYmFyLXNpZ25hdHVyZV9ieXRlcw"
)
MB = 1_000_000


def test_linear_jwt_pattern_masks_what_the_old_one_did() -> None:
    rng = random.Random(9)
    alphabet = ["eyJ", "e", "y", "J", ".", "a", "-", "_", " ", "=", "%3D", "x."]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert redact(text) == OLD_JWT_RE.sub(JWT_MASK, text), text


@pytest.mark.parametrize(
    "unit",
    ["eyJhbGciOiJSUzI1NiJ9", "eyJ", "eyJa.b.", "eyJa.eyJb.", "eyJ.eyJ", "00D5g000004abcd",
     "-----BEGIN A", "-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY----- \\n ",
     "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "a "],
)
def test_one_megabyte_of_adversarial_text_is_redacted(unit: str) -> None:
    text = (unit * (MB // len(unit) + 1))[:MB]
    out = redact(text)  # completes (the old pattern needed ~80 s for the first one)
    assert (JWT_MASK in out) == (unit in ("eyJa.eyJb.", "eyJ.eyJ"))  # the units that form JWTs
    if "MIIE" in unit:  # BEGIN lines with key material: a secret, masked from the first one on
        assert "MIIE" not in out and out.startswith(PEM_MASK)
    elif "BEGIN PRIVATE KEY" in unit:  # bare BEGIN lines, no key material: text, left as it is
        assert out == text


def test_a_megabyte_with_real_secrets_inside_is_masked() -> None:
    filler = "eyJhbGciOiJSUzI1NiJ9" * (MB // 40)
    text = f"{filler} {JWT} {filler} {TOKEN} {filler}"
    out = redact(text)
    assert JWT not in out and TOKEN not in out
    assert out.count(JWT_MASK) == 1 and "00D…WXYZ" in out


def test_excerpt_is_one_line_cut_and_masked() -> None:
    text = "first line\n\n  " + JWT + "\tand " + TOKEN + " " + "p q " * 5000
    shown = excerpt(text, 120)
    assert shown.startswith("first line " + JWT_MASK + " and 00D…WXYZ p q")
    assert shown.endswith("…") and len(shown) == 121
    assert excerpt("short", 120) == "short" and excerpt("", 120) == "" and excerpt(b"", 10) == ""


def test_excerpt_never_shows_a_piece_of_a_secret_the_cut_split() -> None:
    # a JWT far longer than the margin that starts inside the excerpt
    long_jwt = "eyJ" + "a" * 9000 + ".eyJ" + "b" * 100 + ".sig"
    for text in (f"error: {long_jwt}", f"error: {TOKEN[:20]}" + "x" * 9000):
        shown = excerpt(text, 200)
        assert "aaaa" not in shown and "xxxx" not in shown and TOKEN[:16] not in shown
        assert shown.startswith("error:")


def test_excerpt_of_bytes_and_of_a_huge_body() -> None:
    body = ("eyJhbGciOiJSUzI1NiJ9" * 50_000).encode()  # 1 MB, one run: nothing safe to show
    assert excerpt(body, 120) == "…"
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n" * 200
    assert excerpt(pem.encode(), 80).startswith(PEM_MASK)
    assert excerpt("é".encode() * 10, 5) == "ééééé…"
