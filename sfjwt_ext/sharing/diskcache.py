"""The on-disk token cache shared by processes: one encrypted file per login identity.

Many processes of one job (cron runs, a pool, Airflow tasks, Dask workers) log in as the
same user through the same Connected App. A :class:`TokenStore` lets them share one access
token through a folder, so a whole machine makes one token request per expiry.

* An entry is keyed by a :class:`LoginIdentity`: username, consumer key, token URL, audience
  and the SHA-256 of the *public* key (so it does not matter whether the key came from a
  file, PEM text or DER). The file name is a hash of the identity: no name in clear.
* The token is encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from the RSA
  private key's secret exponent. Reading an entry needs the private key, which could log
  in anyway. The identity and the plaintext header are the associated data, so an entry
  copied under another identity, a changed header byte or another key's entry does not
  decrypt. An entry never holds the private key, the passphrase or a JWT.
* Each file starts with a plaintext header (username, masked consumer key, token URL,
  audience, key fingerprint, instance URL, org and user ids, issue time; never a token):
  :meth:`TokenStore.headers` reads them without any key (for ``sfjwt cache list``, which
  escapes control characters: the header is unverified).
* Folder 0700 (created so; a wider folder is tightened when it is ours, else a warning;
  a folder other users can write to, or owned by another user than us or root, is not
  used, as ssh does), files 0600, written atomically (temporary file in the same folder,
  fsync, :func:`os.replace`): a reader sees the old entry or the new one, never a torn
  file. A write also removes the temporary files a killed writer left; :meth:`TokenStore.clear`
  removes only files that are ours (by name and first bytes).
* :meth:`TokenStore.lock` is a cross-process lock per entry (``filelock``) around a
  refresh, with a timeout; the OS drops the lock of a process that dies.
* Nothing here raises for a bad disk: a corrupt, truncated, foreign or undecryptable entry,
  a read-only, unwritable or full folder is logged once per store and reason as a warning,
  and the operation returns ``None`` / ``False``: the caller logs in without the cache.

File layout (version 1)::

    b"SFJWT-TC" | version (1 byte) | header length (4 bytes, big-endian) | header (JSON)
    | nonce (12 bytes) | AES-256-GCM ciphertext of the token JSON, with its 16-byte tag
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import functools
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Deque, Dict, Iterator, List, Optional, Set, Tuple, Union

import platformdirs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._internal.fork import ProcessLocal
from .._internal.redact import get_logger, mask_consumer_key
from ..auth.credentials import LoginIdentity, token_digest
from ..auth.keys import key_fingerprint
from ..auth.token_client import TokenClient, TokenResponse

__all__ = ["entry_name", "TokenStore", "SharedTokenSource", "default_folder", "MAGIC", "FORMAT_VERSION",
           "DEFAULT_LOCK_TIMEOUT", "ENTRY_SUFFIX"]

log = get_logger("sfjwt_ext.tokencache")

MAGIC = b"SFJWT-TC"
FORMAT_VERSION = 1
ENTRY_SUFFIX = ".token"
LOCK_SUFFIX = ".lock"
TEMP_SUFFIX = ".tmp"
#: Longer than a token request may take with its retries (TokenClient's budget is 60 s),
#: so a waiter does not give up on a live holder that is still logging in.
DEFAULT_LOCK_TIMEOUT = 90.0
#: No entry is anywhere near this; a bigger file is not ours.
MAX_ENTRY_BYTES = 64 * 1024

_NONCE_BYTES = 12
_PREFIX = len(MAGIC) + 1 + 4
_HKDF_SALT = b"sfjwt-ext token cache v1"
_HKDF_INFO = b"AES-256-GCM key for token cache entries"
_TOKEN_FIELDS = tuple(f.name for f in dataclasses.fields(TokenResponse))
_CACHEDIR_TAG = "CACHEDIR.TAG"
_CACHEDIR_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
_POSIX = os.name == "posix"
#: How our files are opened to be read: never through a symbolic link.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
#: What our files are called: an entry, and the temporary file of a write (mkstemp's 8 characters).
_ENTRY_NAME = re.compile(r"[0-9a-f]{32}" + re.escape(ENTRY_SUFFIX))
_TEMP_NAME = re.compile(r"\.[0-9a-f]{32}\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX))
#: A writer holds an flock on its temporary file (POSIX): the OS drops it when the writer
#: dies, so an unlocked temporary file older than FRESH_TEMP_SECONDS (the instants between
#: mkstemp and flock, and between close and rename) is a killed writer's. Where there is no
#: flock, a temporary file untouched for STALE_TEMP_SECONDS is. Ages count either way: the
#: clock may have stepped.
FRESH_TEMP_SECONDS = 2.0
STALE_TEMP_SECONDS = 600.0
#: Tokens a SharedTokenSource remembers having handed out (never reused from the entry).
_SEEN_TOKENS = 16

PathLike = Union[str, "os.PathLike[str]"]
#: How the bytes of an entry reach its temporary file (a seam for tests: a full disk).
Writer = Callable[[int, bytes], None]
#: An entry file's plaintext header, or why the file cannot be used.
Header = Union[Dict[str, object], str]


def default_folder() -> Path:
    """The user's cache folder for sfjwt (``~/.cache/sfjwt`` under XDG)."""
    return Path(platformdirs.user_cache_dir("sfjwt", appauthor=False))


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _canonical(identity: LoginIdentity) -> bytes:
    """The identity as the bytes that name the file and bind the ciphertext."""
    return _json(dataclasses.asdict(identity))


def entry_name(identity: LoginIdentity) -> str:
    """The entry's file name stem: a hash of the identity (no username in clear)."""
    return hashlib.sha256(_canonical(identity)).hexdigest()[:32]


class _Unusable(Exception):
    """An entry file that cannot be used; ``reason`` keys the warn-once set."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _write_all(fd: int, data: bytes) -> None:
    with open(fd, "wb", closefd=False) as handle:  # a buffered write writes every byte
        handle.write(data)


def _flock(fd: int) -> Optional[bool]:
    """Take the flock of ``fd`` without waiting: True, or False when another process holds
    it; None where there is no flock (then only a temporary file's age tells)."""
    if not _POSIX:
        return None
    import fcntl  # POSIX only; imported once a token cache writes

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock
        return None
    return True


def _cipher(key: rsa.RSAPrivateKey) -> AESGCM:
    """AES-256-GCM under a key derived from the RSA key's secret exponent."""
    secret = key.private_numbers().d
    material = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(material))


def _split(blob: bytes) -> Tuple[Dict[str, object], bytes, bytes, bytes]:
    """(header, authenticated prefix, nonce, ciphertext) of an entry file, or _Unusable."""
    if not blob:
        raise _Unusable("truncated", "the file is empty")
    if not blob.startswith(MAGIC) and not MAGIC.startswith(blob):
        raise _Unusable("foreign", "not an sfjwt token cache file")
    if len(blob) < _PREFIX:  # a part of the magic, or of what follows it
        raise _Unusable("truncated", "the file ends inside its header")
    version = blob[len(MAGIC)]
    if version != FORMAT_VERSION:
        raise _Unusable("version", f"format version {version} (this sfjwt-ext reads {FORMAT_VERSION})")
    end = _PREFIX + int.from_bytes(blob[len(MAGIC) + 1 : _PREFIX], "big")
    if len(blob) < end + _NONCE_BYTES + 16:
        raise _Unusable("truncated", "the file is shorter than its header says")
    try:
        header = json.loads(blob[_PREFIX:end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Unusable("corrupt", "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _Unusable("corrupt", "its header is not a JSON object")
    return header, blob[:end], blob[end : end + _NONCE_BYTES], blob[end + _NONCE_BYTES :]


def _token_from(plain: bytes) -> TokenResponse:
    """The token of an entry's plaintext. It decrypted, so store() wrote it (with the key):
    what fails here is an entry of a version with other fields."""
    try:
        data = json.loads(plain.decode("utf-8"))
        return TokenResponse(**{name: data[name] for name in _TOKEN_FIELDS if name in data})
    except (TypeError, ValueError):  # not JSON (UnicodeDecodeError is a ValueError), no access_token
        raise _Unusable("corrupt", "its content is not a token") from None


class TokenStore:
    """One cache folder. Thread- and process-safe; every method returns instead of raising
    for a disk problem (logged once per store and reason)."""

    def __init__(
        self, folder: Optional[PathLike] = None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        writer: Optional[Writer] = None,
    ) -> None:
        self._default = folder is None
        self.folder = default_folder() if folder is None else Path(folder).expanduser()
        self.lock_timeout = lock_timeout
        self._writer: Writer = writer or _write_all
        self._guard: ProcessLocal[threading.Lock] = ProcessLocal(threading.Lock)
        self._warned: Set[str] = set()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.folder)!r})"

    def __reduce__(self) -> Tuple["functools.partial[TokenStore]", Tuple[Optional[str]]]:
        # The folder and the timeout travel; per-process state (the lock, what was
        # warned about) and a test writer do not.
        folder = None if self._default else str(self.folder)
        return functools.partial(TokenStore, lock_timeout=self.lock_timeout), (folder,)

    def entry_path(self, identity: LoginIdentity) -> Path:
        return self.folder / (entry_name(identity) + ENTRY_SUFFIX)

    def lock_path(self, identity: LoginIdentity) -> Path:
        return self.folder / (entry_name(identity) + LOCK_SUFFIX)

    # -- reading -------------------------------------------------------------------------
    def load(self, identity: LoginIdentity, key: rsa.RSAPrivateKey) -> Optional[TokenResponse]:
        """The cached token of ``identity``, or ``None`` (no entry, or an unusable one:
        logged once). ``key`` must be the key of ``identity`` (ValueError otherwise: a
        caller's mistake, not a disk problem)."""
        self._check_key(identity, key)
        if not self._prepare(create=False):
            return None
        path = self.entry_path(identity)
        try:
            blob = self._read(path)
            if blob is None:
                return None
            _, prefix, nonce, sealed = _split(blob)
            try:
                plain = _cipher(key).decrypt(nonce, sealed, prefix + _canonical(identity))
            except InvalidTag:
                raise _Unusable(
                    "undecryptable", "it does not decrypt with this key and identity (tampered, or another key's)"
                ) from None
            return _token_from(plain)
        except _Unusable as problem:
            self._warn(f"{problem.reason}:{path.name}", "ignoring the token cache entry %s: %s", path, problem)
            return None

    def _read(self, path: Path) -> Optional[bytes]:
        try:
            fd = os.open(path, _READ_FLAGS)
            with os.fdopen(fd, "rb") as handle:
                blob = handle.read(MAX_ENTRY_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):  # no entry (or no folder) yet
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Unusable("foreign", "it is a symbolic link") from None
            raise _Unusable("unreadable", f"it cannot be read ({exc.strerror or exc})") from None
        if len(blob) > MAX_ENTRY_BYTES:
            raise _Unusable("foreign", f"it is larger than {MAX_ENTRY_BYTES} bytes")
        return blob

    def headers(self) -> List[Tuple[Path, Header]]:
        """(path, plaintext header) of every entry file of the folder, read without any key
        (never a token); the header is why the file cannot be used when it cannot."""
        found: List[Tuple[Path, Header]] = []
        for name in self._names() if self._prepare(create=False) else []:
            path = self.folder / name
            try:
                blob = self._read(path) if name.endswith(ENTRY_SUFFIX) else None
                if blob is not None:  # None: not an entry, or removed meanwhile
                    found.append((path, _split(blob)[0]))
            except _Unusable as problem:
                found.append((path, str(problem)))
        return found

    # -- writing -------------------------------------------------------------------------
    def store(self, identity: LoginIdentity, key: rsa.RSAPrivateKey, token: TokenResponse) -> bool:
        """Write ``token`` as the entry of ``identity`` (atomically). False when it could
        not be written (logged once)."""
        self._check_key(identity, key)
        if not self._prepare():
            return False
        header = _json(dict(
            dataclasses.asdict(identity), consumer_key=mask_consumer_key(identity.consumer_key),
            instance_url=token.instance_url, org_id=token.org_id, user_id=token.user_id, issued_at=token.issued_at,
        ))
        prefix = MAGIC + bytes([FORMAT_VERSION]) + len(header).to_bytes(4, "big") + header
        nonce = os.urandom(_NONCE_BYTES)
        sealed = _cipher(key).encrypt(nonce, _json(dataclasses.asdict(token)), prefix + _canonical(identity))
        return self._replace(self.entry_path(identity), prefix + nonce + sealed)

    def _replace(self, path: Path, data: bytes) -> bool:
        temp = ""
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=TEMP_SUFFIX, dir=self.folder)
            try:
                _flock(fd)  # "a live writer's": dropped by the OS if this process dies
                self._writer(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            temp = ""
            self._sweep_temporary_files()
            return True
        except OSError as exc:
            return self._warn(
                f"write:{errno.errorcode.get(exc.errno or 0, type(exc).__name__)}",
                "cannot write the token cache entry %s (%s): logging in without the cache", path, exc.strerror or exc,
            )
        finally:
            if temp:
                with contextlib.suppress(OSError):
                    os.unlink(temp)

    def discard(self, identity: LoginIdentity) -> bool:
        """Remove the entry of ``identity``; True if one was removed."""
        return self._unlink(self.entry_path(identity))

    def clear(self) -> int:
        """Remove every entry and temporary file of ours; how many entries went. Only files
        named as ours whose first bytes are ours go: a mistyped folder loses nothing, and
        another tool's ``*.token`` stays (named in a warning). Lock files stay: removing one
        a process waits on would let two refresh at once."""
        removed = 0
        for name in self._names() if self._prepare(create=False) else []:
            path = self.folder / name
            if _ENTRY_NAME.fullmatch(name) and self._is_ours(path, temporary=False):
                removed += self._unlink(path)
            elif _TEMP_NAME.fullmatch(name) and self._is_ours(path, temporary=True):
                self._unlink(path)
            elif name.endswith((ENTRY_SUFFIX, TEMP_SUFFIX)):
                self._warn(f"keep:{name}", "left %s in the token cache folder: not an sfjwt token cache file", path)
        return removed

    def _sweep_temporary_files(self) -> None:
        """Remove the temporary files of killed writers (a writer killed between its
        temporary file and the rename leaves one): see :data:`FRESH_TEMP_SECONDS`."""
        now = time.time()
        for name in filter(_TEMP_NAME.fullmatch, self._names()):
            if self._is_ours(self.folder / name, temporary=True, now=now):
                self._unlink(self.folder / name)

    @staticmethod
    def _is_ours(path: Path, *, temporary: bool, now: float = math.inf) -> bool:
        """A regular file of this user that starts as our files do (an entry: the magic;
        a temporary file: the magic, or a part of it when its writer was killed). A temporary
        file also needs its writer gone: not written in the :data:`FRESH_TEMP_SECONDS` before
        ``now`` (a writer may not hold its flock yet: taking it would pass its file for a dead
        writer's), and nobody holds its flock (where flock is missing, idle for
        :data:`STALE_TEMP_SECONDS`)."""
        try:
            fd = os.open(path, _READ_FLAGS | getattr(os, "O_NONBLOCK", 0))
        except OSError:  # a symbolic link, gone, unreadable: not ours to remove
            return False
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or (_POSIX and info.st_uid != os.geteuid()):
                return False
            if temporary:
                idle = abs(now - info.st_mtime)
                locked = _flock(handle.fileno()) if idle > FRESH_TEMP_SECONDS else False
                if locked is False or (locked is None and idle <= STALE_TEMP_SECONDS):
                    return False  # a live writer's, or cannot tell yet
            head = handle.read(len(MAGIC))
        return head == MAGIC or (temporary and MAGIC.startswith(head))

    def _names(self) -> List[str]:
        try:
            return sorted(os.listdir(self.folder))
        except (FileNotFoundError, NotADirectoryError):  # no folder yet: nothing cached
            return []
        except OSError as exc:
            self._warn("list", "cannot list the token cache folder %s: %s", self.folder, exc.strerror or exc)
            return []

    def _unlink(self, path: Path) -> bool:
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            return self._warn(f"remove:{path.name}", "cannot remove %s: %s", path, exc.strerror or exc)

    # -- locking -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, identity: LoginIdentity, timeout: Optional[float] = None) -> Iterator[bool]:
        """Hold the cross-process lock of ``identity``'s entry (around a refresh: re-read,
        log in only if nobody else did, store). Yields True when held; False after
        ``timeout`` seconds (default :attr:`lock_timeout`) or when the folder is unusable
        (logged once): the caller goes on without the lock."""
        timeout = self.lock_timeout if timeout is None else timeout
        path = self.lock_path(identity)
        held = False
        with contextlib.ExitStack() as stack:
            if self._prepare():
                import filelock  # here: only a token cache in use pays for its import

                try:
                    stack.enter_context(filelock.FileLock(str(path), timeout=timeout, mode=0o600))
                    held = True
                except filelock.Timeout:
                    self._warn("lock-timeout", "waited %.0f s for the token cache lock %s: refreshing without it",
                               timeout, path)
                except OSError as exc:
                    self._warn("lock", "cannot lock %s (%s): refreshing without the lock", path, exc.strerror or exc)
            yield held

    # -- the folder ----------------------------------------------------------------------
    def _prepare(self, *, create: bool = True) -> bool:
        """Make sure the folder exists (``create``; else False when it does not), belongs
        to this user (or root), is 0700 when it is ours, and is not writable by other
        users. False (logged once) when it cannot be used."""
        folder = self.folder
        try:
            created = create and not folder.exists()
            if created:
                os.makedirs(folder, mode=0o700, exist_ok=True)
                self._mark(folder)
            info = os.stat(folder)
        except OSError as exc:
            if not create and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                return False  # no folder yet: nothing cached
            return self._warn(
                "folder", "cannot %s the token cache folder %s (%s): not using it",
                "create" if create else "read", folder, exc.strerror or exc,
            )
        if not stat.S_ISDIR(info.st_mode):
            return self._warn("folder", "the token cache folder %s is not a folder: not using it", folder)
        if not _POSIX:
            return True
        if info.st_uid not in (os.geteuid(), 0):  # as ssh does: another user could swap its entries
            return self._warn(
                "folder-owner", "the token cache folder %s is owned by another user (uid %d): not using it; pass a "
                "folder of your own (token_cache=, SF_TOKEN_CACHE) or `chown` it", folder, info.st_uid,
            )
        return self._mode_allows(info, created)

    def _mode_allows(self, info: os.stat_result, created: bool) -> bool:
        folder, mode = self.folder, stat.S_IMODE(info.st_mode)
        if not mode & 0o077:
            return True
        if info.st_uid == os.geteuid() and (created or self._default or self._is_marked(folder)):
            try:
                os.chmod(folder, 0o700)
                return True
            except OSError as exc:
                self._warn("folder-mode", "cannot chmod 700 the token cache folder %s: %s", folder, exc.strerror or exc)
        if mode & 0o022:
            return self._warn(
                "folder-mode", "the token cache folder %s can be written by other users (mode %o): not using it; "
                "`chmod 700` it or pass another token_cache= folder", folder, mode,
            )
        self._warn(
            "folder-mode", "the token cache folder %s can be read by other users (mode %o); its files stay 0600 "
            "and encrypted, but `chmod 700` it", folder, mode,
        )
        return True

    @staticmethod
    def _mark(folder: Path) -> None:
        # CACHEDIR.TAG tells backup tools to skip the folder, and us that we made it.
        with contextlib.suppress(OSError):
            fd = os.open(folder / _CACHEDIR_TAG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(_CACHEDIR_SIGNATURE + "\n# sfjwt-ext token cache: https://bford.info/cachedir/\n")

    @staticmethod
    def _is_marked(folder: Path) -> bool:
        try:
            with open(folder / _CACHEDIR_TAG, encoding="utf-8", errors="replace") as handle:
                return handle.read(len(_CACHEDIR_SIGNATURE)) == _CACHEDIR_SIGNATURE
        except OSError:
            return False

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _check_key(identity: LoginIdentity, key: rsa.RSAPrivateKey) -> None:
        if key_fingerprint(key) != identity.key_id:
            raise ValueError("the key is not the key of this LoginIdentity (build it with LoginIdentity.for_key)")

    def _warn(self, reason: str, message: str, *args: object) -> bool:
        """Log ``message`` as a warning the first time for ``reason``, then at debug level;
        False: what the callers that give up return."""
        with self._guard.get():
            first = reason not in self._warned
            self._warned.add(reason)
        (log.warning if first else log.debug)(message, *args)
        return False


# ---------------------------------------------------------------------------------------
# the refresh path of many processes
# ---------------------------------------------------------------------------------------


class SharedTokenSource:
    """A token source (what a :class:`~sfjwt_ext.auth.transport.Refresher` calls ``fetch()`` on)
    that shares the tokens of a token ``client`` through a :class:`TokenStore`: N processes, one
    token request. Its entry is the one of the client's identity with ``key``, the client's key.

    ``fetch()`` is asked for a token it has not handed out before (the refresher's token
    just failed; ``last`` is the token a client starts with, e.g. an unpickled one's).
    Tokens are compared by identity, never by issue time: the clock may step either way
    between two logins, and one process's clock says nothing of another's.

    1. the entry, read without the lock, if it holds a token this source has not handed
       out (another process refreshed already): no token request;
    2. else under the entry's cross-process lock: read it again (the holder before us may
       have just written it), and only if it still holds nothing new, one
       ``client.fetch()``, written to the entry before the lock is released.

    The tokens it handed out (the last :data:`_SEEN_TOKENS`, as SHA-256 digests) are never
    taken from the entry again, so an entry this process could not replace (a full disk) is
    not reused. A disk problem never raises (the store logs it once): the login simply goes
    without the cache. Its refresher calls ``fetch()`` under its own lock: one at a time.
    """

    def __init__(
        self, client: TokenClient, store: TokenStore, key: rsa.RSAPrivateKey, *, last: Optional[TokenResponse] = None
    ) -> None:
        self.client = client
        self.store = store
        self.username = client.username
        self.identity = LoginIdentity.for_key(
            username=client.username, consumer_key=client.consumer_key, token_url=client.target.token_url,
            audience=client.target.audience, key=key,
        )
        self._key = key
        seen = [token_digest(last.access_token)] if last is not None else []
        self._seen: Deque[bytes] = collections.deque(seen, maxlen=_SEEN_TOKENS)

    def fetch(self) -> TokenResponse:
        token = self._new_entry("token of %s taken from the cache %s", self.store.folder)
        if token is None:
            with self.store.lock(self.identity):
                token = self._new_entry("token of %s written by another process meanwhile")
                if token is None:
                    token = self.client.fetch()
                    self.store.store(self.identity, self._key, token)
        self._seen.append(token_digest(token.access_token))
        return token

    def _new_entry(self, message: str, *args: object) -> Optional[TokenResponse]:
        """The entry's token if this source has not handed it out (``message`` logged), else None."""
        token = self.store.load(self.identity, self._key)
        if token is None or token_digest(token.access_token) in self._seen:
            return None
        log.debug(message, self.identity.username, *args)
        return token

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"SharedTokenSource({self.identity!r}, {self.store!r})"
