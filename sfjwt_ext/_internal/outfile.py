"""Where an output goes: :class:`OutputFile`, the one helper behind ``sfjwt query --output``
(every format) and :func:`sfjwt_ext.data.dataframe.query_to_parquet`.

* A regular file (or a new one) is written to a temporary file in its folder
  (``.NAME.<random>.tmp``), fsynced and renamed over it only by :meth:`OutputFile.commit`:
  a failure at any point (Ctrl-C included) removes the temporary file and leaves the old
  file byte for byte as it was. A replaced file keeps its mode (and, where allowed, its
  group; its owner too when running as root); a new file gets the mode the umask gives
  (``0o666 & ~umask``), as with any ``open()``.
* A symbolic link is written through: the file it names is replaced, in that file's folder;
  the link stays.
* A FIFO or a character device (``/dev/null``, ``/dev/stdout`` on a pipe or a terminal) is
  opened and streamed into: there is nothing there to keep, and renaming a file over it
  would turn it into a regular file. A block device or a socket is refused.
* A folder, a missing folder, or a path that cannot be looked at is a
  :class:`~sfjwt_ext.errors.ConfigurationError` naming the argument (``--output`` or
  ``path``), raised by the constructor, before anything is created or fetched.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import stat
from typing import IO, Any, Optional, Union

from ..errors import ConfigurationError
from .files import file_kind

__all__ = ["OutputFile"]

PathLike = Union[str, "os.PathLike[str]"]


class OutputFile:
    """One output target, checked when made, opened by :meth:`open` (see the module docstring).

    ``named`` is how the caller spelled the argument (``"--output"``, ``"path"``): every
    error message names it."""

    def __init__(self, name: PathLike, *, named: str) -> None:
        self.name = os.fspath(name)
        self.named = named
        self.temp: Optional[str] = None
        self.handle: Optional[IO[Any]] = None
        try:
            info: Optional[os.stat_result] = os.stat(self.name)  # through links
        except FileNotFoundError:
            info = None
        except OSError as exc:  # a loop of links, a file used as a folder, no permission
            raise self._error(exc.strerror or str(exc)) from None
        self.replaced = info if info is not None and stat.S_ISREG(info.st_mode) else None
        #: a FIFO or character device, written in place (by the name given: /dev/stdout on a
        #: pipe resolves to no path at all)
        self.stream = info is not None and (stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode))
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise ConfigurationError(f"{named} {self.name!r} is a folder: give a file name in it")
        if info is not None and not self.stream and self.replaced is None:
            raise ConfigurationError(f"{named} {self.name!r} is {file_kind(info.st_mode)}: give a file name, "
                                     f"a FIFO or a character device")
        self.path = self.name if self.stream else os.path.realpath(self.name)
        folder = os.path.dirname(self.path)
        if not self.stream and not os.path.isdir(folder):
            raise ConfigurationError(f"the folder of {named} {self.name!r} ({folder}) does not exist; "
                                     f"create it first")

    def _error(self, reason: str) -> ConfigurationError:
        return ConfigurationError(f"cannot write {self.named} {self.name!r}: {reason}")

    def open(self, binary: bool = False) -> IO[Any]:
        """The stream to write to: the FIFO / device itself, else a new temporary file
        (text: UTF-8, no newline translation)."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC) if self.stream else self._create_temp()
        except OSError as exc:
            raise self._error(exc.strerror or str(exc)) from None
        self.handle = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self.handle

    def _create_temp(self) -> int:
        folder, base = os.path.split(self.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        while True:
            temp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")
            with contextlib.suppress(FileExistsError):  # 32 random bits: another name, almost never
                fd = os.open(temp, flags, 0o666)  # the umask applies, as for any new file
                break
        self.temp = temp
        if self.replaced is not None:
            _keep_owner_and_mode(fd, self.replaced)
        return fd

    def commit(self) -> None:
        """Everything is written: flush, and put the temporary file in place."""
        handle = self.handle or self.open()
        handle.flush()
        if self.temp is not None:
            os.fsync(handle.fileno())
        handle.close()
        if self.temp is not None:
            os.replace(self.temp, self.path)
            self.temp = None

    def discard(self) -> None:
        """Close, and remove the temporary file if there is one (nothing after a commit)."""
        if self.handle is not None:
            with contextlib.suppress(OSError):  # a full disk's last flush: the temp file goes anyway
                self.handle.close()
        if self.temp is not None:
            with contextlib.suppress(OSError):  # already gone
                os.unlink(self.temp)
            self.temp = None

    def __enter__(self) -> "OutputFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _keep_owner_and_mode(fd: int, info: os.stat_result) -> None:
    """Give the new file the replaced one's group (its owner too as root) and mode."""
    if hasattr(os, "fchown"):
        with contextlib.suppress(OSError):  # not a member of that group: the file stays ours, the mode still applies
            os.fchown(fd, info.st_uid if os.geteuid() == 0 else -1, info.st_gid)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, stat.S_IMODE(info.st_mode))
