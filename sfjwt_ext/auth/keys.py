"""RSA private keys for the JWT bearer flow.

* :func:`load_private_key` accepts a file, PEM text (``str`` or ``bytes``, PKCS#1, PKCS#8,
  encrypted PKCS#8 or legacy encrypted PEM), DER bytes, or an already-loaded key object, and
  raises :class:`~sfjwt_ext.errors.PrivateKeyError` saying what was found and what to do.
  Messages never contain key material.
* :func:`repair_pem` fixes PEM text mangled by environment variables and CI secrets:
  literal ``\\n`` sequences, CRLF, newlines folded into spaces, surrounding quotes.
* Making a key pair and its certificate is the command line's (``sfjwt_ext.cli.keypair``).
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable, List, Optional, Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning

from ..errors import ConfigurationError, PrivateKeyError, SfJwtError
from .._internal.files import check_file_permissions, read_small_file

__all__ = ["load_private_key", "read_key_file", "KEY_MAX_BYTES", "repair_pem", "key_fingerprint", "passphrase_bytes",
           "MIN_KEY_BITS"]

#: Salesforce needs RSA keys of at least 2048 bits.
MIN_KEY_BITS = 2048
#: A PEM RSA key of 4096 bits is ~3.3 KB (a bundle with its certificate chain a few more):
#: a key file over 64 KiB is not one.
KEY_MAX_BYTES = 64 * 1024

PathLike = Union[str, "os.PathLike[str]"]
Passphrase = Union[str, bytes, None]

_FILE_SOURCE = "private_key_file= / SF_PRIVATE_KEY_FILE / --key-file"
_TEXT_SOURCE = "private_key= / SF_PRIVATE_KEY"
_KEY_FILE_INSTEAD = (f"pass the path of the .key file (PEM, a few KB) as {_FILE_SOURCE}, or its text in "
                     "SF_PRIVATE_KEY (e.g. SF_PRIVATE_KEY=\"$(vault read ...)\" rather than a pipe)")

_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_HEADER_RE = re.compile(r"\b(Proc-Type|DEK-Info):\s*(\S+)")

#: What each kind of unusable key is told. ``{where}`` names the argument or file the key came
#: from; ``{hint}``, ``{file}``, ``{passphrase}`` and ``{upload}`` are filled in by :func:`_fail`.
_MESSAGES = {
    "too_short": "{where} is an RSA key of {bits} bits: Salesforce needs at least {min_bits} bits; {hint}, "
                 "upload the new certificate to the app {upload} and use the new key",
    "public": "{where} is a public key: the JWT is signed with the private key (the .key file, "
              "'-----BEGIN PRIVATE KEY-----'); the public half goes to Salesforce as a certificate",
    "not_rsa": "{where} is not an RSA key ({kind}): Salesforce signs JWT logins with RS256 only; {hint}",
    "certificate": "{where} is a certificate (.crt), not the private key: the certificate goes to Salesforce "
                   "{upload}; pass the private key (.key) instead ({file})",
    "csr": "{where} is a certificate signing request (.csr), not the private key: pass the private key (.key) "
           "instead ({file})",
    "no_key": "{where} does not contain a private key: found {found}. Pass the RSA private key in PEM form "
              "('-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----'); {hint}",
    "binary": "{where} is binary data that is neither a PEM nor a DER private key: pass the RSA private key in "
              "PEM form (-----BEGIN PRIVATE KEY-----); {hint}",
    "der_not_key": "{where} is binary (DER) data that is not a private key, or the passphrase is wrong: pass the "
                   "RSA private key in PEM form; {hint}",
    "der_no_passphrase": "{where} is an encrypted DER key and no passphrase was given: set {passphrase}",
    "pem_no_passphrase": "{where} is an encrypted private key and no passphrase was given: set {passphrase} (or "
                         "decrypt it once: `openssl pkey -in key.enc -out salesforce.key` and chmod 600 it)",
    "ssh_no_passphrase": "{where} is an encrypted OpenSSH key and no passphrase was given: set {passphrase}",
    "wrong_passphrase": "{where} could not be decrypted: the passphrase is wrong (check {passphrase})",
    "damaged": "{where} has a '-----BEGIN {label}-----' block that cryptography cannot parse (damaged, truncated "
               "or edited): copy the whole key file again; {hint}",
    "unsupported": "{where} uses a key type or encryption this cryptography build cannot read; Salesforce needs "
                   "an RSA key: {hint}",
    # cryptography warns while loading some non-RSA keys or old encryptions; under -W error it raises
    "deprecated": "{where} uses a key type or encryption that cryptography deprecates ({warning}): Salesforce "
                  "needs an RSA key; {hint}",
    "ssh_unreadable": "{where} is an OpenSSH private key that could not be read (wrong passphrase or damaged): "
                      "convert it with `ssh-keygen -p -m PKCS8 -f <file>`",
}


def _fail(problem: str, where: str, **details: object) -> PrivateKeyError:
    """The :class:`PrivateKeyError` of ``problem`` (a key of :data:`_MESSAGES`) for the key from ``where``."""
    return PrivateKeyError(_MESSAGES[problem].format(
        where=where, file=_FILE_SOURCE, passphrase="private_key_passphrase= / SF_PRIVATE_KEY_PASSPHRASE",
        hint="make one with `sfjwt keygen` or `openssl genrsa -out salesforce.key 2048`",
        upload="(External Client App: Flow Enablement > Upload Files; an existing Connected App: "
               "'Use digital signatures')",
        **details,
    ))


# ---------------------------------------------------------------------------------------
# repair
# ---------------------------------------------------------------------------------------
def _rebuild_block(label: str, inner: str) -> str:
    headers = [f"{match.group(1)}: {match.group(2)}" for match in _PEM_HEADER_RE.finditer(inner)]
    body = re.sub(r"\s+", "", _PEM_HEADER_RE.sub(" ", inner))
    lines = [f"-----BEGIN {label}-----", *headers, *([""] if headers else [])]
    lines.extend(body[i : i + 64] for i in range(0, len(body), 64))
    lines.append(f"-----END {label}-----")
    return "\n".join(lines) + "\n"


def repair_pem(text: str) -> str:
    """PEM ``text`` with the usual damage undone: literal ``\\n`` sequences, CRLF or CR line
    ends, line breaks folded into spaces (the BEGIN/END lines and a 64-column base64 body are
    rebuilt), surrounding quotes and whitespace. Text that holds no PEM block is returned
    with only the line ends and quotes fixed."""
    fixed = text.strip()
    if len(fixed) >= 2 and fixed[0] == fixed[-1] and fixed[0] in "\"'":
        fixed = fixed[1:-1].strip()
    fixed = fixed.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    fixed = fixed.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [_rebuild_block(m.group(1), m.group(2)) for m in _BLOCK_RE.finditer(fixed)]
    return "".join(blocks) if blocks else fixed


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def passphrase_bytes(passphrase: Passphrase) -> Optional[bytes]:
    """``passphrase`` as the bytes cryptography takes; None when there is none (or it is empty)."""
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if passphrase is not None and not isinstance(passphrase, (bytes, bytearray, memoryview)):
        raise ConfigurationError(f"private_key_passphrase must be str or bytes, not {type(passphrase).__name__}")
    return bytes(passphrase) if passphrase else None


def _check_key(key: object, where: str) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _fail("public" if _is_public_key(key) else "not_rsa", where, kind=type(key).__name__.lstrip("_"))
    if key.key_size < MIN_KEY_BITS:
        raise _fail("too_short", where, bits=key.key_size, min_bits=MIN_KEY_BITS)
    return key


def _is_public_key(key: object) -> bool:
    """Whether ``key`` is a public key of any kind. By shape (``public_bytes`` and no
    ``private_bytes``), not by class: naming ``dsa.DSAPublicKey`` makes cryptography 51 warn
    that DSA is deprecated, which under ``-W error`` would replace our own error."""
    return (callable(getattr(key, "public_bytes", None)) and not hasattr(key, "private_bytes")
            and not isinstance(key, x509.Certificate))


def _describe_text(text: str) -> str:
    """What a non-key text looks like, without quoting it."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    labels = [m.group(1) for m in re.finditer(r"-----BEGIN ([A-Z0-9 ]+)-----", stripped)]
    if labels:
        return "a PEM block '" + "', '".join(f"BEGIN {label}" for label in labels) + "' but no private key"
    if stripped.startswith(("ssh-rsa", "ssh-ed25519", "ecdsa-sha2")):
        return "an OpenSSH public key"
    return f"{len(stripped)} characters of text that is not PEM (no '-----BEGIN ... PRIVATE KEY-----' line)"


def _no_key_error(text: str, labels: List[str], where: str) -> PrivateKeyError:
    """The error for text without a private key block: what it holds instead."""
    if {"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"} & set(labels):
        return _fail("certificate", where)
    if any(label.endswith("PUBLIC KEY") for label in labels) or text.strip().startswith("ssh-"):
        return _fail("public", where)
    if "CERTIFICATE REQUEST" in labels:
        return _fail("csr", where)
    return _fail("no_key", where, found=_describe_text(text))


def _load_from_bytes(data: bytes, where: str, passphrase: Passphrase) -> rsa.RSAPrivateKey:
    password = passphrase_bytes(passphrase)
    # DER (binary: an ASN.1 SEQUENCE, 0x30, then a long-form length byte >= 0x80) is tried
    # as DER whatever else it holds: ~2 % of keys contain the two bytes backslash-n, which
    # are no sign of a PEM with literal "\n" (that one is text, with its BEGIN line).
    if data[:1] == b"\x30" and not data.isascii() and b"-----BEGIN" not in data:
        return _load_binary(_load_der, data, where, password, "der")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("binary", where) from None
    return _load_from_text(text, where, password)


#: The key is the user's own (their file, their secret store), not an attacker's: skip
#: cryptography's RSA consistency check, which costs ~50 ms per load and is what made a
#: cold login slower than it needs to be. A damaged key still fails, at Salesforce, as
#: "invalid assertion" with the re-upload hint.
_FAST_LOAD = {"unsafe_skip_rsa_key_validation": True}


def _load_der(data: bytes, password: Optional[bytes]) -> object:
    return serialization.load_der_private_key(data, password=password, **_FAST_LOAD)


def _load_binary(load: Callable[[bytes, Optional[bytes]], object], data: bytes, where: str, password: Optional[bytes],
                 kind: str) -> rsa.RSAPrivateKey:
    """The key ``load`` reads from a DER (``kind`` "der") or OpenSSH ("ssh") key; cryptography refuses
    (TypeError) both a missing passphrase and one the key does not need: that one is left out."""
    try:
        key = load(data, password)
    except TypeError:
        if password is None:
            raise _fail(f"{kind}_no_passphrase", where) from None
        return _load_binary(load, data, where, None, kind)
    except CryptographyDeprecationWarning as warning:  # raised, not shown, under -W error
        raise _fail("deprecated", where, warning=warning) from None
    except (ValueError, UnsupportedAlgorithm):
        raise _fail(_der_kind(data) if kind == "der" else "ssh_unreadable", where) from None
    return _check_key(key, where)


def _der_kind(data: bytes) -> str:
    """What DER data that is not a private key holds: a certificate, a public key, or neither."""
    for kind, load in (("certificate", x509.load_der_x509_certificate), ("public", serialization.load_der_public_key)):
        try:
            load(data)
        except (ValueError, UnsupportedAlgorithm):
            continue
        return kind
    return "der_not_key"


def _load_from_text(text: str, where: str, password: Optional[bytes]) -> rsa.RSAPrivateKey:
    blocks = list(_BLOCK_RE.finditer(repair_pem(text)))
    key_blocks = [m for m in blocks if m.group(1).endswith("PRIVATE KEY")]
    if not key_blocks:
        raise _no_key_error(text, [m.group(1) for m in blocks], where)
    label, block = key_blocks[0].group(1), key_blocks[0].group(0)
    pem = block.encode("ascii", "replace")
    if label == "OPENSSH PRIVATE KEY":
        return _load_binary(serialization.load_ssh_private_key, pem, where, password, "ssh")
    encrypted = label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in block
    if encrypted and password is None:
        raise _fail("pem_no_passphrase", where)
    try:
        key = serialization.load_pem_private_key(pem, password=password if encrypted else None, **_FAST_LOAD)
    except ValueError:
        raise _fail("wrong_passphrase" if encrypted else "damaged", where, label=label) from None
    except CryptographyDeprecationWarning as warning:  # raised, not shown, under -W error
        raise _fail("deprecated", where, warning=warning) from None
    except UnsupportedAlgorithm:
        raise _fail("unsupported", where) from None
    return _check_key(key, where)


def load_private_key(*, private_key: Union[str, bytes, rsa.RSAPrivateKey, None] = None,
                     private_key_file: Optional[PathLike] = None, passphrase: Passphrase = None) -> rsa.RSAPrivateKey:
    """The RSA private key from ``private_key`` (PEM/DER text or bytes, or a key object) or
    ``private_key_file`` (a path), decrypted with ``passphrase`` when encrypted.

    Raises :class:`PrivateKeyError` for every kind of unusable input, and
    :class:`ConfigurationError` when both or neither source is given. Warns
    (:class:`KeyFilePermissionWarning`) when the key file is readable by others.
    """
    blank = isinstance(private_key, (str, bytes)) and not private_key.strip()
    has_text = private_key is not None and not blank
    has_file = private_key_file is not None and str(private_key_file).strip() != ""
    if has_text == has_file:
        raise _source_error(has_text, blank)
    if has_file or isinstance(private_key, os.PathLike):
        return _load_file(private_key_file if has_file else private_key, passphrase)  # type: ignore[arg-type]
    if isinstance(private_key, (bytes, bytearray, memoryview)):
        return _load_from_bytes(bytes(private_key), "private_key= (bytes)", passphrase)
    if isinstance(private_key, str):
        _refuse_a_path(private_key)
        return _load_from_text(private_key, "private_key= (SF_PRIVATE_KEY)", passphrase_bytes(passphrase))
    return _check_key(private_key, "private_key=")


def _source_error(both: bool, blank: bool) -> SfJwtError:
    """The error for both sources given (``both``), or neither (``blank``: an empty key text)."""
    if both:
        return ConfigurationError("both private_key= and private_key_file= were given: pass only one (the key "
                                  "text or the path to the .key file)")
    if blank:
        return PrivateKeyError(f"private_key= is empty: pass the PEM text of the RSA private key, or its path "
                               f"as {_FILE_SOURCE}")
    return ConfigurationError(f"no private key: pass {_FILE_SOURCE} (the path to the .key file) or {_TEXT_SOURCE} "
                              "(the PEM text)")


def _refuse_a_path(text: str) -> None:
    """Raise :class:`PrivateKeyError` when the key text ``text`` is the path of a file."""
    if "-----BEGIN" not in text and "\n" not in text.strip() and len(text) < 4096:
        candidate = os.path.expanduser(text.strip())
        if os.path.isfile(candidate):
            raise PrivateKeyError(f"private_key= holds a file path ({candidate!r}), not the key text: pass "
                                  f"it as private_key_file= (or SF_PRIVATE_KEY_FILE) instead")


def read_key_file(path_value: PathLike) -> bytes:
    """The bytes of the key file ``path_value`` (``~`` expanded): a regular file of at most
    :data:`KEY_MAX_BYTES`. Opened without blocking and checked on the open descriptor, so
    ``/dev/zero`` or a FIFO raise at once. Raises :class:`PrivateKeyError` saying what was
    found (no such file, permission denied, a directory, a FIFO, a device, N bytes) and what
    to give instead; never blocks, never reads more than the cap."""
    path = Path(os.path.expanduser(str(path_value)))
    try:
        return read_small_file(path, what="the key file", limit=KEY_MAX_BYTES, instead=_KEY_FILE_INSTEAD)
    except ConfigurationError as exc:
        raise PrivateKeyError(str(exc)) from None
    except OSError as exc:
        raise _read_error(path, exc) from None


def _read_error(path: Path, exc: OSError) -> PrivateKeyError:
    """The error for a key file the system would not read."""
    if isinstance(exc, FileNotFoundError):
        here = "" if path.is_absolute() else f" (current directory: {os.getcwd()!r})"
        return PrivateKeyError(f"no such file: {str(path)!r} (from {_FILE_SOURCE}); check the path{here}")
    if isinstance(exc, PermissionError):
        return PrivateKeyError(f"cannot read {str(path)!r}: permission denied; run as the key's owner or give "
                               "this user read access (keep it private: chmod 600)")
    return PrivateKeyError(f"cannot read {str(path)!r}: {exc.strerror or exc}")


def _load_file(path_value: PathLike, passphrase: Passphrase) -> rsa.RSAPrivateKey:
    path = Path(os.path.expanduser(str(path_value)))
    data = read_key_file(path)
    key = _load_from_bytes(data, f"the key file {str(path)!r}", passphrase)
    check_file_permissions(path, stacklevel=4)
    return key


def key_fingerprint(key: rsa.RSAPrivateKey) -> str:
    """``sha256:<hex>`` of the public key (DER SubjectPublicKeyInfo): the key's identity,
    the same however the private key was given."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()
