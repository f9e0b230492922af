"""Per-process state: what a forked child must not inherit.

``os.fork()`` copies every lock in whatever state another thread left it (a child can block
for good on a lock held by a thread that does not exist there) and every pooled socket (a
child writing on its parent's TLS connection corrupts both streams). An object that owns such
state keeps it in a :class:`ProcessLocal`: ``get()`` returns the value made in *this*
process, and makes a fresh one (from the factory) the first time it is called after a fork.

    self._lock = ProcessLocal(threading.Lock)
    with self._lock.get():
        ...

``ProcessLocal.forked()`` tells an owner that the value was just remade, so it can drop other
per-process state with it (close inherited pools without writing on them, forget a refresh
that was in flight in a thread of the parent).
"""
from __future__ import annotations

import os
import threading
from typing import Callable, Generic, Optional, TypeVar

__all__ = ["ProcessLocal"]

T = TypeVar("T")

class _RemakeGuard:
    """The one lock that guards remaking values after a fork. It is itself made anew in each
    child (register_at_fork runs in the child's only thread, before anything else)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def renew(self) -> None:
        self.lock = threading.Lock()


_REMAKE_GUARD = _RemakeGuard()
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_REMAKE_GUARD.renew)


class ProcessLocal(Generic[T]):
    """A value owned by one process: remade from ``factory`` in a forked child."""

    __slots__ = ("_factory", "_value", "_pid", "_remade")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T = factory()
        self._pid = os.getpid()
        self._remade = False

    def get(self) -> T:
        if self._pid != os.getpid():
            with _REMAKE_GUARD.lock:
                if self._pid != os.getpid():
                    self._value = self._factory()
                    self._remade = True
                    self._pid = os.getpid()
        return self._value

    def forked(self) -> bool:
        """True once after ``get()`` remade the value in a child (then False again)."""
        self.get()
        remade, self._remade = self._remade, False
        return remade

    def peek(self) -> Optional[T]:
        """The value if it belongs to this process, else ``None`` (nothing is made)."""
        return self._value if self._pid == os.getpid() else None

    def __getstate__(self) -> None:  # a lock or a pool never travels in a pickle
        raise TypeError("ProcessLocal state is per process and cannot be pickled")

    def __repr__(self) -> str:
        return f"ProcessLocal({getattr(self._factory, '__name__', self._factory)!r})"
