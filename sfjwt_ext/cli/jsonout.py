"""``--json`` and warnings for the ``sfjwt`` command.

* The Salesforce CLI's envelope: success is ``{"status": 0, "result": {...}, "warnings": [...]}``
  (:func:`success`), a failure ``{"status": N, "name", "message", "exitCode": N, "context",
  "commandName", "code", "data"?, "warnings"}`` (:func:`failure`) with the command's exit code;
  :func:`write` prints one document on stdout.
* :class:`RecordsDocument` is ``sf data query --json``'s document (the records as Salesforce
  returns them, ``totalSize``, ``done``) built page by page in a spooled temporary file
  (memory up to 8 MB, then disk), so stdout gets one whole document, or on a failure only the
  error document, whatever the size of the result.
* :func:`one_line_warnings` shows every warning (``warnings.warn`` and the package's WARNING
  log records) as one line ``sfjwt: warning: ...`` on stderr, not Python's two-line
  ``file:line: Category: message``, and collects them for the ``warnings`` array.
"""
from __future__ import annotations

import json
import logging
import sys
import tempfile
import warnings
from contextlib import contextmanager
from typing import IO, Any, Dict, Iterable, Iterator, List, Mapping, Optional

from .._internal.redact import PACKAGE_LOGGER, redact

__all__ = ["Warnings", "one_line_warnings", "success", "failure", "write", "RecordsDocument"]

_SPOOL_BYTES = 8 << 20


class Warnings:
    """The run's warnings: each printed once as ``sfjwt: warning: ...`` (a logged one not when
    ``quiet``: --verbose's log handler shows it already) and kept for the JSON ``warnings``."""

    def __init__(self, quiet: bool = False) -> None:
        self.messages: List[str] = []
        self.quiet = quiet

    def show(self, message: object, logged: bool = False) -> None:
        line = " ".join(redact(str(message)).split())
        self.messages.append(line)
        if not (logged and self.quiet):
            print(f"sfjwt: warning: {line}", file=sys.stderr)


class _WarningHandler(logging.Handler):
    def __init__(self, collected: Warnings) -> None:
        super().__init__(logging.WARNING)
        self.collected = collected

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR:  # errors end the command and are reported as such
            self.collected.show(record.getMessage(), logged=True)


@contextmanager
def one_line_warnings(collected: Warnings) -> Iterator[None]:
    """Route ``warnings.warn`` and the ``sfjwt_ext`` loggers' warnings to ``collected`` while
    the command runs (the filters, e.g. ``-W error``, still apply)."""
    handler = _WarningHandler(collected)
    logger = logging.getLogger(PACKAGE_LOGGER)
    with warnings.catch_warnings():
        def show(message: Any, category: Any, filename: str, lineno: int, file: Optional[IO[str]] = None,
                 line: Optional[str] = None) -> None:
            collected.show(message)

        warnings.showwarning = show
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)


def success(result: Mapping[str, Any], collected: Warnings) -> Dict[str, Any]:
    return {"status": 0, "result": dict(result), "warnings": list(collected.messages)}


def failure(*, code: int, name: str, message: str, command: str, collected: Warnings,
            data: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    doc: Dict[str, Any] = {
        "status": code, "name": name, "message": message, "exitCode": code, "context": command,
        "commandName": command, "code": name,
    }
    if data:
        doc["data"] = dict(data)
    doc["warnings"] = list(collected.messages)
    return doc


def write(out: IO[str], doc: Mapping[str, Any]) -> None:
    out.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    out.flush()


class RecordsDocument:
    """``{"status": 0, "result": {"records": [...], "totalSize": N, "done": B}, "warnings": []}``,
    one record a line, spooled until :meth:`finish` copies it to stdout."""

    def __init__(self) -> None:
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8")
        self.count = 0

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self._spool.write(("\n      " if self.count == 0 else ",\n      ") + json.dumps(record, ensure_ascii=False))
            self.count += 1

    def finish(self, out: IO[str], *, total: Optional[int], done: bool, collected: Warnings) -> None:
        out.write('{\n  "status": 0,\n  "result": {\n    "records": [')
        self._spool.seek(0)
        while True:
            chunk = self._spool.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
        size = total if total is not None else self.count
        out.write(("\n    ]" if self.count else "]") + f',\n    "totalSize": {json.dumps(size)},\n'
                  f'    "done": {json.dumps(done)}\n  }},\n'
                  f'  "warnings": {json.dumps(collected.messages, ensure_ascii=False)}\n}}\n')
        out.flush()

    def close(self) -> None:
        self._spool.close()
