"""RSA private keys and self-signed certificates for the JWT bearer flow.

* :func:`load_private_key` accepts a file, PEM text (``str`` or ``bytes``, PKCS#1, PKCS#8,
  encrypted PKCS#8 or legacy encrypted PEM), DER bytes, or an already-loaded key object, and
  raises :class:`~sfjwt_ext.errors.PrivateKeyError` saying what was found and what to do.
  Messages never contain key material.
* :func:`repair_pem` fixes PEM text mangled by environment variables and CI secrets:
  literal ``\\n`` sequences, CRLF, newlines folded into spaces, surrounding quotes.
* :func:`generate_key_pair` / :func:`write_key_pair` make the key and the certificate to
  upload to the Connected App ("Use digital signatures").
"""
from __future__ import annotations

import datetime
import hashlib
import os
import re
from pathlib import Path
from typing import List, Optional, Tuple, Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from ..errors import ConfigurationError, PrivateKeyError
from .._internal.files import check_file_permissions, read_small_file, write_atomic

__all__ = [
    "load_private_key",
    "read_key_file",
    "check_pair_name",
    "KEY_MAX_BYTES",
    "MAX_DAYS",
    "repair_pem",
    "generate_key_pair",
    "self_signed_certificate",
    "write_key_pair",
    "key_matches_certificate",
    "load_certificate",
    "fingerprint",
    "check_file_permissions",
    "KeyPairExistsError",
    "MIN_KEY_BITS",
]

#: Salesforce needs RSA keys of at least 2048 bits.
MIN_KEY_BITS = 2048
#: A PEM RSA key of 4096 bits is ~3.3 KB (a bundle with its certificate chain a few more):
#: a key file over 64 KiB is not one.
KEY_MAX_BYTES = 64 * 1024
#: The longest certificate validity ``generate_key_pair`` makes: 100 years (an X.509 date
#: cannot pass 9999-12-31 anyway).
MAX_DAYS = 36500

PathLike = Union[str, "os.PathLike[str]"]
Passphrase = Union[str, bytes, None]

_FILE_SOURCE = "private_key_file= / SF_PRIVATE_KEY_FILE / --key-file"
_TEXT_SOURCE = "private_key= / SF_PRIVATE_KEY"
_PASSPHRASE_SOURCE = "private_key_passphrase= / SF_PRIVATE_KEY_PASSPHRASE"
_KEYGEN_HINT = "make one with `sfjwt keygen` or `openssl genrsa -out salesforce.key 2048`"

_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_HEADER_RE = re.compile(r"\b(Proc-Type|DEK-Info):\s*(\S+)")


class KeyPairExistsError(ConfigurationError, FileExistsError):
    """:func:`write_key_pair` would overwrite an existing file (pass ``force=True``).
    ``paths``: the files that exist (the CLI words its own message from them)."""

    paths: Tuple[str, ...] = ()


def _exists_error(paths: List[str]) -> KeyPairExistsError:
    error = KeyPairExistsError(
        f"{' and '.join(repr(p) for p in paths)} already exist{'s' if len(paths) == 1 else ''}: "
        "pass force=True to replace, or choose another name / directory"
    )
    error.paths = tuple(paths)
    return error


# ---------------------------------------------------------------------------------------
# repair
# ---------------------------------------------------------------------------------------
def _rebuild_block(label: str, inner: str) -> str:
    headers: List[Tuple[str, str]] = []
    for match in _PEM_HEADER_RE.finditer(inner):
        headers.append((match.group(1), match.group(2)))
    body = _PEM_HEADER_RE.sub(" ", inner)
    body = re.sub(r"\s+", "", body)
    lines = [f"-----BEGIN {label}-----"]
    if headers:
        lines.extend(f"{name}: {value}" for name, value in headers)
        lines.append("")
    lines.extend(body[i : i + 64] for i in range(0, len(body), 64))
    lines.append(f"-----END {label}-----")
    return "\n".join(lines) + "\n"


def repair_pem(text: str) -> str:
    """PEM ``text`` with the usual damage undone: literal ``\\n`` sequences, CRLF or CR line
    ends, line breaks folded into spaces (the BEGIN/END lines and a 64-column base64 body are
    rebuilt), surrounding quotes and whitespace. Text that holds no PEM block is returned
    with only the line ends and quotes fixed."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    fixed = text.strip()
    if len(fixed) >= 2 and fixed[0] == fixed[-1] and fixed[0] in "\"'":
        fixed = fixed[1:-1].strip()
    fixed = fixed.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
    fixed = fixed.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [_rebuild_block(m.group(1), m.group(2)) for m in _BLOCK_RE.finditer(fixed)]
    if not blocks:
        return fixed
    return "".join(blocks)


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def _passphrase_bytes(passphrase: Passphrase) -> Optional[bytes]:
    if passphrase is None:
        return None
    if isinstance(passphrase, str):
        return passphrase.encode("utf-8") if passphrase else None
    if isinstance(passphrase, (bytes, bytearray, memoryview)):
        return bytes(passphrase) or None
    raise ConfigurationError(
        f"private_key_passphrase must be str or bytes, not {type(passphrase).__name__}"
    )


def _check_key(key: object, where: str) -> rsa.RSAPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_KEY_BITS:
            raise PrivateKeyError(
                f"{where} is an RSA key of {key.key_size} bits: Salesforce needs at least "
                f"{MIN_KEY_BITS} bits; {_KEYGEN_HINT}, upload the new certificate to the "
                "app (External Client App: Flow Enablement > Upload Files; an existing Connected "
                "App: 'Use digital signatures') and use the new key"
            )
        return key
    if isinstance(key, rsa.RSAPublicKey) or _is_public_key(key):
        raise PrivateKeyError(
            f"{where} is a public key: the JWT is signed with the private key (the .key file, "
            "'-----BEGIN PRIVATE KEY-----'); the public half goes to Salesforce as a certificate"
        )
    kind = type(key).__name__.lstrip("_")
    raise PrivateKeyError(
        f"{where} is not an RSA key ({kind}): Salesforce signs JWT logins with RS256 only; "
        f"{_KEYGEN_HINT}"
    )


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


def _load_from_bytes(data: bytes, where: str, passphrase: Passphrase) -> rsa.RSAPrivateKey:
    password = _passphrase_bytes(passphrase)
    # DER (binary: an ASN.1 SEQUENCE, 0x30, then a long-form length byte >= 0x80) is tried
    # as DER whatever else it holds: ~2 % of keys contain the two bytes backslash-n, which
    # are no sign of a PEM with literal "\n" (that one is text, with its BEGIN line).
    if data[:1] == b"\x30" and not data.isascii() and b"-----BEGIN" not in data:
        return _load_der(data, where, password)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PrivateKeyError(
            f"{where} is binary data that is neither a PEM nor a DER private key: pass the RSA "
            f"private key in PEM form (-----BEGIN PRIVATE KEY-----); {_KEYGEN_HINT}"
        ) from None
    return _load_from_text(text, where, password)


#: The key is the user's own (their file, their secret store), not an attacker's: skip
#: cryptography's RSA consistency check, which costs ~50 ms per load and is what made a
#: cold login slower than it needs to be. A damaged key still fails, at Salesforce, as
#: "invalid assertion" with the re-upload hint.
_FAST_LOAD = {"unsafe_skip_rsa_key_validation": True}


def _load_der(data: bytes, where: str, password: Optional[bytes]) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_der_private_key(data, password=password, **_FAST_LOAD)
    except TypeError:
        if password is None:
            raise PrivateKeyError(
                f"{where} is an encrypted DER key and no passphrase was given: set "
                f"{_PASSPHRASE_SOURCE}"
            ) from None
        key = serialization.load_der_private_key(data, password=None, **_FAST_LOAD)
    except CryptographyDeprecationWarning as warning:  # raised, not shown, under -W error
        raise PrivateKeyError(_deprecated_message(where, warning)) from None
    except (ValueError, UnsupportedAlgorithm):
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            pass
        else:
            raise PrivateKeyError(_certificate_message(where)) from None
        try:
            public = serialization.load_der_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            pass
        else:
            _check_key(public, where)
        raise PrivateKeyError(
            f"{where} is binary (DER) data that is not a private key, or the passphrase is "
            f"wrong: pass the RSA private key in PEM form; {_KEYGEN_HINT}"
        ) from None
    return _check_key(key, where)


def _deprecated_message(where: str, warning: Warning) -> str:
    """cryptography warns (CryptographyDeprecationWarning) while loading some non-RSA keys or
    old encryptions; under ``-W error`` that warning is raised: it becomes our error."""
    return (
        f"{where} uses a key type or encryption that cryptography deprecates ({warning}): "
        f"Salesforce needs an RSA key; {_KEYGEN_HINT}"
    )


def _certificate_message(where: str) -> str:
    return (
        f"{where} is a certificate (.crt), not the private key: the certificate goes to "
        "Salesforce (External Client App: Flow Enablement > Upload Files; an existing "
        "Connected App: 'Use digital signatures'); pass the private key (.key) "
        f"instead ({_FILE_SOURCE})"
    )


def _load_from_text(text: str, where: str, password: Optional[bytes]) -> rsa.RSAPrivateKey:
    repaired = repair_pem(text)
    blocks = list(_BLOCK_RE.finditer(repaired))
    labels = [m.group(1) for m in blocks]
    key_blocks = [m for m in blocks if m.group(1).endswith("PRIVATE KEY")]
    if not key_blocks:
        if any(label in ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE") for label in labels):
            raise PrivateKeyError(_certificate_message(where))
        if any(label.endswith("PUBLIC KEY") for label in labels) or text.strip().startswith("ssh-"):
            raise PrivateKeyError(
                f"{where} is a public key: the JWT is signed with the private key (the .key "
                "file, '-----BEGIN PRIVATE KEY-----'); the public half goes to Salesforce as a "
                "certificate"
            )
        if any(label == "CERTIFICATE REQUEST" for label in labels):
            raise PrivateKeyError(
                f"{where} is a certificate signing request (.csr), not the private key: pass "
                f"the private key (.key) instead ({_FILE_SOURCE})"
            )
        where_text = f"{where} does not contain a private key: found {_describe_text(text)}"
        raise PrivateKeyError(
            f"{where_text}. Pass the RSA private key in PEM form ('-----BEGIN PRIVATE KEY-----' "
            f"or '-----BEGIN RSA PRIVATE KEY-----'); {_KEYGEN_HINT}"
        )
    block = key_blocks[0]
    label = block.group(1)
    pem = block.group(0).encode("ascii", "replace")
    if label == "OPENSSH PRIVATE KEY":
        return _load_openssh(pem, where, password)
    encrypted = label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in block.group(0)
    if encrypted and password is None:
        raise PrivateKeyError(
            f"{where} is an encrypted private key and no passphrase was given: set "
            f"{_PASSPHRASE_SOURCE} (or decrypt it once: `openssl pkey -in key.enc -out "
            "salesforce.key` and chmod 600 it)"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=password if encrypted else None, **_FAST_LOAD)
    except ValueError:
        if encrypted:
            raise PrivateKeyError(
                f"{where} could not be decrypted: the passphrase is wrong (check "
                f"{_PASSPHRASE_SOURCE})"
            ) from None
        raise PrivateKeyError(
            f"{where} has a '-----BEGIN {label}-----' block that cryptography cannot parse "
            f"(damaged, truncated or edited): copy the whole key file again; {_KEYGEN_HINT}"
        ) from None
    except CryptographyDeprecationWarning as warning:  # raised, not shown, under -W error
        raise PrivateKeyError(_deprecated_message(where, warning)) from None
    except TypeError:  # pragma: no cover - encryption detected above
        raise PrivateKeyError(
            f"{where} is an encrypted private key and no passphrase was given: set {_PASSPHRASE_SOURCE}"
        ) from None
    except UnsupportedAlgorithm:
        raise PrivateKeyError(
            f"{where} uses a key type or encryption this cryptography build cannot read; "
            f"Salesforce needs an RSA key: {_KEYGEN_HINT}"
        ) from None
    return _check_key(key, where)


def _load_openssh(pem: bytes, where: str, password: Optional[bytes]) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_ssh_private_key(pem, password=password)
    except TypeError:
        raise PrivateKeyError(
            f"{where} is an encrypted OpenSSH key and no passphrase was given: set {_PASSPHRASE_SOURCE}"
        ) from None
    except CryptographyDeprecationWarning as warning:  # raised, not shown, under -W error
        raise PrivateKeyError(_deprecated_message(where, warning)) from None
    except (ValueError, UnsupportedAlgorithm):
        raise PrivateKeyError(
            f"{where} is an OpenSSH private key that could not be read (wrong passphrase or "
            "damaged): convert it with `ssh-keygen -p -m PKCS8 -f <file>`"
        ) from None
    return _check_key(key, where)


def load_private_key(
    *,
    private_key: Union[str, bytes, rsa.RSAPrivateKey, None] = None,
    private_key_file: Optional[PathLike] = None,
    passphrase: Passphrase = None,
) -> rsa.RSAPrivateKey:
    """The RSA private key from ``private_key`` (PEM/DER text or bytes, or a key object) or
    ``private_key_file`` (a path), decrypted with ``passphrase`` when encrypted.

    Raises :class:`PrivateKeyError` for every kind of unusable input, and
    :class:`ConfigurationError` when both or neither source is given. Warns
    (:class:`KeyFilePermissionWarning`) when the key file is readable by others.
    """
    has_text = private_key is not None and not (isinstance(private_key, (str, bytes)) and not private_key.strip())
    has_file = private_key_file is not None and str(private_key_file).strip() != ""
    if has_text and has_file:
        raise ConfigurationError(
            "both private_key= and private_key_file= were given: pass only one (the key text "
            "or the path to the .key file)"
        )
    if not has_text and not has_file:
        if isinstance(private_key, (str, bytes)):
            raise PrivateKeyError(
                "private_key= is empty: pass the PEM text of the RSA private key, or its path "
                f"as {_FILE_SOURCE}"
            )
        raise ConfigurationError(
            f"no private key: pass {_FILE_SOURCE} (the path to the .key file) or {_TEXT_SOURCE} "
            "(the PEM text)"
        )
    if has_file:
        return _load_file(private_key_file, passphrase)  # type: ignore[arg-type]
    if isinstance(private_key, os.PathLike):
        return _load_file(private_key, passphrase)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return _check_key(private_key, "private_key=")
    if isinstance(private_key, (bytes, bytearray, memoryview)):
        return _load_from_bytes(bytes(private_key), "private_key= (bytes)", passphrase)
    if isinstance(private_key, str):
        text = private_key
        if "-----BEGIN" not in text and "\n" not in text.strip() and len(text) < 4096:
            candidate = os.path.expanduser(text.strip())
            if os.path.isfile(candidate):
                raise PrivateKeyError(
                    f"private_key= holds a file path ({candidate!r}), not the key text: pass "
                    f"it as private_key_file= (or SF_PRIVATE_KEY_FILE) instead"
                )
        return _load_from_text(text, "private_key= (SF_PRIVATE_KEY)", _passphrase_bytes(passphrase))
    return _check_key(private_key, "private_key=")


def read_key_file(path_value: PathLike) -> bytes:
    """The bytes of the key file ``path_value`` (``~`` expanded): a regular file of at most
    :data:`KEY_MAX_BYTES`. Opened without blocking and checked on the open descriptor, so
    ``/dev/zero`` or a FIFO raise at once. Raises :class:`PrivateKeyError` saying what was
    found (no such file, permission denied, a directory, a FIFO, a device, N bytes) and what
    to give instead; never blocks, never reads more than the cap."""
    path = Path(os.path.expanduser(str(path_value)))
    instead = (
        f"pass the path of the .key file (PEM, a few KB) as {_FILE_SOURCE}, or its text in "
        "SF_PRIVATE_KEY (e.g. SF_PRIVATE_KEY=\"$(vault read ...)\" rather than a pipe)"
    )
    try:
        return read_small_file(path, what="the key file", limit=KEY_MAX_BYTES, instead=instead)
    except ConfigurationError as exc:
        raise PrivateKeyError(str(exc)) from None
    except FileNotFoundError:
        raise PrivateKeyError(
            f"no such file: {str(path)!r} (from {_FILE_SOURCE}); check the path"
            + (f" (current directory: {os.getcwd()!r})" if not path.is_absolute() else "")
        ) from None
    except PermissionError:
        raise PrivateKeyError(
            f"cannot read {str(path)!r}: permission denied; run as the key's owner or give "
            "this user read access (keep it private: chmod 600)"
        ) from None
    except OSError as exc:
        raise PrivateKeyError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def _load_file(path_value: PathLike, passphrase: Passphrase) -> rsa.RSAPrivateKey:
    path = Path(os.path.expanduser(str(path_value)))
    data = read_key_file(path)
    key = _load_from_bytes(data, f"the key file {str(path)!r}", passphrase)
    check_file_permissions(path, stacklevel=4)
    return key


# ---------------------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------------------
def generate_key_pair(
    bits: int = 2048, days: int = 730, common_name: str = "sfjwt"
) -> Tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A new RSA key and a self-signed X.509 certificate (SHA-256, ``CN=common_name``,
    valid for ``days`` days) to upload to the Connected App."""
    if bits < MIN_KEY_BITS:
        raise ConfigurationError(f"bits={bits}: Salesforce needs RSA keys of at least {MIN_KEY_BITS} bits")
    if days < 1:
        raise ConfigurationError(f"days={days}: the certificate must be valid for at least one day")
    if days > MAX_DAYS:
        raise ConfigurationError(
            f"days={days}: at most {MAX_DAYS} (100 years); a certificate's dates cannot pass the "
            "year 9999, and Salesforce lets you upload a new one at any time"
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key, self_signed_certificate(key, days=days, common_name=common_name)


def self_signed_certificate(
    key: rsa.RSAPrivateKey, *, days: int = 730, common_name: str = "sfjwt"
) -> x509.Certificate:
    """A self-signed X.509 certificate (SHA-256, ``CN=common_name``, valid ``days`` days) for
    an RSA key: what the External Client App (or Connected App) is given."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert


def _write_atomic(path: Path, data: bytes, mode: int, force: bool) -> None:
    """:func:`write_atomic`; without ``force`` an existing file is a :class:`KeyPairExistsError`."""
    try:
        write_atomic(path, data, mode, replace=force)
    except FileExistsError:
        raise _exists_error([str(path)]) from None


def check_pair_name(name: object) -> None:
    """``name`` is a file name: not empty, no path separator, not ``.`` or ``..``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"name={name!r}: give the file name without extension, e.g. name='salesforce'"
        )
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    if any(sep in name for sep in separators) or "\0" in name or name in (".", ".."):
        raise ConfigurationError(
            f"name={name!r} is not a plain file name (no '/', not '.' or '..'): put the folder in "
            "out_dir= and the file name without extension in name="
        )


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700 (a key lives there);
    folders that exist already are left as they are."""
    missing: List[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile (another keygen): fine if it is a folder
            if not folder.is_dir():
                raise
    if not directory.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(directory))


def write_key_pair(
    out_dir: PathLike,
    name: str = "salesforce",
    *,
    bits: int = 2048,
    days: int = 730,
    passphrase: Passphrase = None,
    force: bool = False,
    common_name: str = "sfjwt",
) -> Tuple[Path, Path]:
    """Generate a key pair and write ``<out_dir>/<name>.key`` (PKCS#8 PEM, mode 0600,
    encrypted with ``passphrase`` if given) and ``<out_dir>/<name>.crt``. Refuses to
    overwrite either file unless ``force`` (:class:`KeyPairExistsError`, a
    ``FileExistsError`` and a :class:`ConfigurationError`)."""
    check_pair_name(name)
    directory = Path(os.path.expanduser(str(out_dir)))
    key_path = directory / f"{name}.key"
    cert_path = directory / f"{name}.crt"
    if not force:
        existing = [str(p) for p in (key_path, cert_path) if p.exists()]
        if existing:
            raise _exists_error(existing)
    _make_private_dirs(directory)
    key, cert = generate_key_pair(bits=bits, days=days, common_name=common_name)
    password = _passphrase_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=encryption,
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    _write_atomic(key_path, key_pem, 0o600, force)
    try:
        _write_atomic(cert_path, cert_pem, 0o644, force)
    except KeyPairExistsError:
        os.unlink(key_path)  # do not leave a key without its certificate
        raise
    return key_path, cert_path


def key_matches_certificate(key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bool:
    """True when ``cert`` holds the public half of ``key``."""
    cert_public = cert.public_key()
    if not isinstance(cert_public, rsa.RSAPublicKey) or not isinstance(key, rsa.RSAPrivateKey):
        return False
    return cert_public.public_numbers() == key.public_key().public_numbers()


def load_certificate(path: PathLike) -> x509.Certificate:
    """An X.509 certificate from a PEM or DER file. Raises :class:`ConfigurationError`
    naming the file when it is missing or not a certificate."""
    file_path = Path(os.path.expanduser(str(path)))
    try:
        data = file_path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"no such certificate file: {str(file_path)!r}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the certificate {str(file_path)!r}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN" in data:
            text = repair_pem(data.decode("utf-8", "replace"))
            if "PRIVATE KEY" in text and "CERTIFICATE" not in text:
                raise ConfigurationError(
                    f"{str(file_path)!r} is a private key, not a certificate: pass the .crt file"
                )
            return x509.load_pem_x509_certificate(text.encode("ascii", "replace"))
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(
            f"{str(file_path)!r} is not an X.509 certificate (PEM '-----BEGIN CERTIFICATE-----' or DER)"
        ) from None


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as colon-separated upper-case hex."""
    return ":".join(f"{byte:02X}" for byte in cert.fingerprint(hashes.SHA256()))


def key_fingerprint(key: rsa.RSAPrivateKey) -> str:
    """``sha256:<hex>`` of the public key (DER SubjectPublicKeyInfo): the key's identity,
    the same however the private key was given."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()
