"""Safe reads of small files the user names (keys, profiles) and their permission checks."""
from __future__ import annotations

import errno
import os
import stat
import warnings
from typing import Any, Union

from ..errors import ConfigurationError, KeyFilePermissionWarning

__all__ = ["check_file_permissions", "file_kind", "file_size_text", "read_small_file", "warn_on_mode"]


_KINDS = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: "a directory", "a named pipe (FIFO)" ..."""
    return next((kind for is_kind, kind in _KINDS if is_kind(mode)), "not a regular file")


def file_size_text(n: int) -> str:
    """``n`` bytes as a person reads it: 512 bytes, 12 KiB, 3.4 MiB."""
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def read_small_file(path: Union[str, "os.PathLike[str]"], *, what: str, limit: int, instead: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Opened without blocking (``O_NONBLOCK``: a FIFO with no writer does not hang), then
    checked on the open descriptor (``fstat``, no race with a rename): a directory, a FIFO,
    a device (``/dev/zero`` would be read until memory runs out) or a socket raise
    :class:`ConfigurationError` saying what was found, ``what`` it should be and ``instead``
    (what to give). So does a file over ``limit`` bytes. ``OSError`` (missing file,
    permission denied) is left to the caller, which knows the setting to name."""
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO on some systems)
            raise ConfigurationError(f"{what} {name!r} is a socket, not a regular file: {instead}") from None
        if isinstance(exc, IsADirectoryError):  # Windows
            raise ConfigurationError(f"{what} {name!r} is a directory, not a regular file: {instead}") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"{what} {name!r} is {file_kind(info.st_mode)}, not a regular file: {instead}")
        if info.st_size > limit:
            raise ConfigurationError(
                f"{what} {name!r} is {file_size_text(info.st_size)}, more than the {file_size_text(limit)} such a "
                f"file can be: is it the right file? {instead}"
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)  # the file may grow after the fstat: never read past the cap
    if len(data) > limit:
        raise ConfigurationError(f"{what} {name!r} grew past {file_size_text(limit)} while being read: {instead}")
    return data


def check_file_permissions(path: Any, stacklevel: int = 3) -> None:
    """Warn (:class:`KeyFilePermissionWarning`) when the private key file ``path`` is
    accessible by group or others, as ssh does. No-op where POSIX modes do not apply."""
    warn_on_mode(path, stat.S_IRWXG | stat.S_IRWXO, f"the private key file {str(path)!r} is accessible by group or "
                 "others", "chmod 600", stacklevel + 1)


def warn_on_mode(path: Any, bits: int, what: str, command: str, stacklevel: int) -> None:
    """Warn (:class:`KeyFilePermissionWarning`) ``what`` and the ``command`` that fixes it when
    the mode of ``path`` has one of ``bits``: POSIX only; a path that cannot be read is left to its reader."""
    if os.name != "posix":
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & bits:
        warnings.warn(f"{what} (mode {stat.S_IMODE(mode):04o}): run `{command} {path}`",
                      KeyFilePermissionWarning, stacklevel=stacklevel)
