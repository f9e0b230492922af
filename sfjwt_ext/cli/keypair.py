"""Key pairs for the command line (`sfjwt keygen`, `sfjwt setup`, `sfjwt check --cert`): a new RSA
key and the self-signed certificate to upload to the app, written as files, and the certificate
checks (does it match the key, its fingerprint)."""
from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
from pathlib import Path
from typing import List, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..errors import ConfigurationError
from ..auth.keys import MIN_KEY_BITS, Passphrase, PathLike, passphrase_bytes, repair_pem

__all__ = [
    "check_pair_name",
    "MAX_DAYS",
    "generate_key_pair",
    "self_signed_certificate",
    "write_atomic",
    "write_key_pair",
    "key_matches_certificate",
    "load_certificate",
    "fingerprint",
    "KeyPairExistsError",
]

#: The longest certificate validity ``generate_key_pair`` makes: 100 years (an X.509 date
#: cannot pass 9999-12-31 anyway).
MAX_DAYS = 36500


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


def write_atomic(path: Path, data: bytes, mode: int, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, created with ``mode``
    and fsynced, so a reader (or a crash) sees the old file or the new one, never half of one.
    ``replace``: rename over ``path``; else link it into place, ``FileExistsError`` when ``path``
    exists (where hard links are not supported: an exclusive create)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        os.fchmod(fd, mode) if hasattr(os, "fchmod") else os.chmod(tmp_name, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp_name, path)
            return
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here
            out = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
            with os.fdopen(out, "wb") as handle:
                handle.write(data)
        os.unlink(tmp_name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


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
    password = passphrase_bytes(passphrase)
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
