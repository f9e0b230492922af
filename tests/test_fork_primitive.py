"""ProcessLocal: a forked child gets fresh locks, even when a parent thread held them."""
from __future__ import annotations

import os
import threading

import pytest

from sfjwt_ext._internal.fork import ProcessLocal

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_child_gets_a_fresh_lock_that_a_parent_thread_holds() -> None:
    lock = ProcessLocal(threading.Lock)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock.get():
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(10)
    try:
        pid = os.fork()
        if pid == 0:  # child: the inherited lock is held by a thread that does not exist here
            ok = lock.get().acquire(timeout=5) and lock.forked() is True and lock.forked() is False
            os._exit(0 if ok else 1)
        deadline_status = os.waitpid(pid, 0)[1]
        assert os.waitstatus_to_exitcode(deadline_status) == 0
        assert lock.get().locked()  # the parent's lock is untouched
    finally:
        release.set()
        t.join(10)


def test_forked_reports_a_remake_once() -> None:
    value = ProcessLocal(object)
    first = value.get()
    assert value.forked() is False
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        ok = value.get() is not first and value.forked() is True and value.forked() is False
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        got = pipe.read()
    os.waitpid(pid, 0)
    assert got == b"1"
    assert value.get() is first


def test_peek_makes_nothing_and_pickle_is_refused() -> None:
    import pickle

    value = ProcessLocal(dict)
    assert value.peek() is value.get()
    with pytest.raises(TypeError):
        pickle.dumps(value)
