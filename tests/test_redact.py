from __future__ import annotations

import logging

import pytest

from sfjwt_ext._internal.redact import (
    JWT_MASK,
    PEM_MASK,
    RedactingFilter,
    get_logger,
    mask_token,
    redact,
)

TOKEN = "00D5g000004abcd!AQ0AQHjm1f2Q3gkkz.zJ2yHcR9uFwX0b2v1xLb7_abcdWXYZ"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiIzTVZHOSIsInN1YiI6ImFubkBhY21lLmNvbSJ9."
    "Zm9vYmFyLXNpZ25hdHVyZV9ieXRlcw"
)
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "c2VjcmV0IGtleSBtYXRlcmlhbA==\n"
    "-----END PRIVATE KEY-----"
)


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured():
    handler = ListHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("sfjwt_ext")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_mask_token():
    assert mask_token(TOKEN) == "00D…WXYZ"
    assert mask_token("short") == "…"
    assert mask_token(None) == "None"


@pytest.mark.parametrize(
    "secret,mask",
    [(TOKEN, "00D…WXYZ"), (JWT, JWT_MASK), (PEM, PEM_MASK)],
)
def test_redact_each_kind(secret, mask):
    text = f"before {secret} after"
    out = redact(text)
    assert secret not in out
    assert out == f"before {mask} after"


def test_redact_token_in_url_encoded_form_and_header():
    encoded = TOKEN.replace("!", "%21")
    out = redact(f"Authorization: Bearer {TOKEN}; url=...?sid={encoded}")
    assert TOKEN not in out and encoded not in out
    assert "Bearer 00D…WXYZ" in out


def test_redact_pem_with_literal_backslash_n_and_encrypted_and_truncated():
    one_line = PEM.replace("\n", "\\n")
    assert "MIIEvQ" not in redact(one_line)
    encrypted = PEM.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
    assert "MIIEvQ" not in redact(encrypted)
    truncated = PEM.split("-----END")[0]
    assert "MIIEvQ" not in redact("key: " + truncated)


def test_redact_leaves_ordinary_text_alone():
    text = "login of ann@acme.com at https://login.salesforce.com: org 00D5g000004abcd"
    assert redact(text) == text


def test_filter_masks_message_and_args(captured):
    log = get_logger("sfjwt_ext.test_redact")
    log.info("token %s assertion %s key %s", TOKEN, JWT, PEM)
    line = captured.lines[-1]
    assert TOKEN not in line and JWT not in line and "MIIEvQ" not in line
    assert "00D…WXYZ" in line and JWT_MASK in line and PEM_MASK in line


def test_filter_sets_args_empty_and_msg_masked():
    record = logging.LogRecord("sfjwt_ext", logging.INFO, __file__, 1, "token=%s n=%d", (TOKEN, 3), None)
    assert RedactingFilter().filter(record) is True
    assert record.args == ()
    assert record.msg == "token=00D…WXYZ n=3"


def test_filter_masks_dict_args():
    record = logging.LogRecord("sfjwt_ext", logging.INFO, __file__, 1, "body %(t)s", ({"t": TOKEN},), None)
    RedactingFilter().filter(record)
    assert TOKEN not in record.getMessage()


def test_filter_survives_bad_format_string():
    record = logging.LogRecord("sfjwt_ext", logging.INFO, __file__, 1, "oops %s %s", (TOKEN,), None)
    assert RedactingFilter().filter(record) is True
    assert TOKEN not in record.getMessage()


def test_filter_masks_exception_text(captured):
    log = get_logger("sfjwt_ext.test_redact")
    try:
        raise RuntimeError(f"server said {TOKEN} for {JWT}")
    except RuntimeError:
        log.exception("failed")
    line = captured.lines[-1]
    assert "RuntimeError" in line
    assert TOKEN not in line and JWT not in line


def test_filter_masks_stack_info(captured):
    log = get_logger("sfjwt_ext.test_redact")
    log.info("with stack %s", TOKEN, stack_info=True)
    assert TOKEN not in captured.lines[-1]


def test_package_logger_has_one_filter_and_get_logger_is_idempotent():
    package = logging.getLogger("sfjwt_ext")
    assert sum(isinstance(f, RedactingFilter) for f in package.filters) == 1
    a = get_logger("sfjwt_ext.something")
    b = get_logger("sfjwt_ext.something")
    assert a is b
    assert sum(isinstance(f, RedactingFilter) for f in a.filters) == 1


def test_get_logger_puts_short_names_under_the_package():
    assert get_logger("exchange").name == "sfjwt_ext.exchange"
    assert get_logger().name == "sfjwt_ext"


def test_child_logger_without_filter_would_leak_which_is_why_get_logger_exists(captured):
    # documents the logging behaviour get_logger works around: a logger's filters do not
    # apply to records propagated from its children.
    plain = logging.getLogger("sfjwt_ext.unfiltered_child_for_test")
    plain.info("raw %s", TOKEN)
    assert TOKEN in captured.lines[-1]
    get_logger("sfjwt_ext.unfiltered_child_for_test").info("raw %s", TOKEN)
    assert TOKEN not in captured.lines[-1]


def test_our_own_hints_quoting_a_begin_line_are_not_redacted():
    """A BEGIN line with no key material after it is our text (keys.py's hints), not a secret."""
    hint = ("does not contain a private key. Pass the RSA private key in PEM form ('-----BEGIN PRIVATE KEY-----' "
            "or '-----BEGIN RSA PRIVATE KEY-----'); make one with `sfjwt keygen`")
    assert redact(hint) == hint
    assert redact("(-----BEGIN PRIVATE KEY-----); x") == "(-----BEGIN PRIVATE KEY-----); x"
    # ... while the same hint followed by a real key still loses the key
    out = redact(hint + " " + PEM)
    assert out == hint + " " + PEM_MASK


def test_a_key_on_one_line_with_spaces_or_crlf_is_still_redacted():
    for joined in (PEM.replace("\n", " "), PEM.replace("\n", "\r\n"), PEM.replace("\n", "\\r\\n"), PEM.replace("\n", ""),
                   PEM.replace("\n", "\\\\n")):  # JSON in JSON: the newline escaped twice
        assert "MIIEvQ" not in redact(joined) and PEM_MASK in redact(joined), joined
    encrypted = ("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,0A1B\n\n"
                 "c2VjcmV0IGtleSBtYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----")
    assert redact(encrypted) == PEM_MASK
