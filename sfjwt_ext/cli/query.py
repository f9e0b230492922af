"""``sfjwt query``: SOQL to table, csv, json, jsonl or parquet, page by page."""
from __future__ import annotations

import argparse
import io
import sys
from typing import IO, Any, Dict, List, Optional
from urllib.parse import urlencode

from .._internal.outfile import OutputFile
from ..client import connect_jwt
from ..data.dataframe import BULK_PARALLEL, _frames, _pandas, _parquet_into, _pyarrow
from ..data.records import QueryPages
from . import jsonout
from .base import EXIT_OK, UsageError, connection_arguments, err
from .jsonout import RecordsDocument
from .output import TABLE_MAX_ROWS, Writer, make_writer
from .rows import RowPlan


class _RowCounter:
    """A one-line record counter on stderr, only when stderr is a terminal."""

    def __init__(self, total: Optional[int]) -> None:
        self.total = total
        self.done = 0
        self.shown = False

    def update(self, n: int) -> None:
        self.done += n
        of = f"/{self.total}" if self.total is not None else ""
        sys.stderr.write(f"\r{self.done}{of} records")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


#: Salesforce refuses a REST request whose URI and headers together pass 16,384 bytes
#: (HTTP 414 or 431, an HTML page; Salesforce Help 000386264). ``sf.query`` sends the SOQL
#: in the URL of a GET, so a longer query is refused here, before any connection. The room
#: is for the host, the path and the headers (the bearer token, the user agent ...).
QUERY_URI_LIMIT = 16_384
_QUERY_URI_ROOM = 1_000


def _read_soql(args: argparse.Namespace) -> str:
    soql: Optional[str] = args.soql
    if soql in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(
                "no SOQL given: pass it as an argument (sfjwt query \"SELECT Id FROM Account\") or "
                "pipe it in (sfjwt query - < query.soql)"
            )
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        if isinstance(data, bytes):
            try:
                soql = data.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"the SOQL on stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                    f"{exc.start}): save the query as UTF-8 (e.g. `iconv -f latin1 -t utf-8 "
                    "query.soql`)"
                ) from None
        else:
            soql = data
    try:
        soql.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable bytes in argv come as lone surrogates
        raise UsageError(
            f"the SOQL argument is not valid UTF-8 (at character {exc.start}): pass it as UTF-8 text, "
            "or pipe a UTF-8 file in (sfjwt query - < query.soql)"
        ) from None
    soql = soql.strip()
    if not soql:
        raise UsageError("the SOQL query is empty: pass e.g. sfjwt query \"SELECT Id, Name FROM Account\"")
    encoded = len(urlencode({"q": soql}))
    if encoded + _QUERY_URI_ROOM > QUERY_URI_LIMIT:
        raise UsageError(
            f"the query is too long for a GET: {len(soql):,} characters, {encoded:,} bytes in the URL, "
            f"and Salesforce refuses a request whose URI and headers pass {QUERY_URI_LIMIT:,} bytes; "
            "shorten it (fewer fields, split a long IN (...) list over several queries) or run it "
            "as a Bulk API 2.0 query job (sf.bulk2), which sends the SOQL in the request body"
        )
    return soql


def _show_progress(args: argparse.Namespace, out: IO[str]) -> bool:
    """A progress line on stderr only when stderr is a terminal, and not when the rows are
    being printed on that same terminal as they arrive (they would tangle)."""
    if not _isatty(sys.stderr):
        return False
    return bool(args.output) or args.format == "table" or not _isatty(out)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def cmd_query(args: argparse.Namespace, out: IO[str]) -> int:
    """Rows are written as each page arrives (the next page is fetched while one is written):
    nothing but the current page is held, except by the table format, which keeps at most
    ``TABLE_MAX_ROWS`` and then stops fetching. ``--output`` is checked before the login
    and goes through a temporary file renamed at the end (:class:`~sfjwt_ext._internal.outfile.OutputFile`),
    made only once Salesforce has answered the first page: a failure at any point leaves an
    existing file byte for byte as it was. With --json: :func:`_query_json`."""
    soql = _read_soql(args)
    if getattr(args, "json", False):
        return _query_json(args, soql, out)
    args.format = args.format or "table"
    if args.format == "parquet":
        return _query_parquet(args, soql)
    return _query_rows(args, soql, out)


def _query_rows(args: argparse.Namespace, soql: str, out: IO[str]) -> int:
    output = OutputFile(args.output, named="--output") if args.output else None
    sf = connect_jwt(**connection_arguments(args))
    plan = RowPlan(soql)  # the SELECT list's columns; the records' own keys for FIELDS() / TYPEOF
    fetch = QueryPages(sf, soql, args.include_deleted)
    result: Optional[Dict[str, Any]] = fetch.first()
    loop = _PageLoop(args, out, out if output is None else output.open(), plan)
    try:
        while result is not None:
            result = loop.page(result, fetch)
        loop.finish()
        if output is not None:
            output.commit()
    finally:
        fetch.close()
        if loop.progress is not None:
            loop.progress.close()
        if output is not None:
            output.discard()  # after a commit: nothing left to do
    _report_rows(args, loop)
    return EXIT_OK


class _PageLoop:
    """The pages of one query written as they arrive (table, csv, json, jsonl): the writer is
    made from the first records (the SELECT list's order, the API's spelling of each name)."""

    def __init__(self, args: argparse.Namespace, out: IO[str], target: IO[str], plan: RowPlan) -> None:
        self.args, self.out, self.target, self.plan = args, out, target, plan
        self.is_count = plan.query is not None and plan.query.is_count
        self.writer: Optional[Writer] = None
        self.progress: Optional[_RowCounter] = None
        self.pages = 0
        self.total: Optional[int] = None
        self.stopped = ""

    def page(self, result: Dict[str, Any], fetch: QueryPages) -> Optional[Dict[str, Any]]:
        """Write one page; the next one, or None when this was the last to write."""
        self.pages += 1
        self.total = result.get("totalSize")
        records = result.get("records") or []
        if self.is_count and not records:
            records = [{"count": self.total}]
        next_url = result.get("nextRecordsUrl")
        more = not result.get("done", True)
        rows_after = (self.writer.rows if self.writer is not None else 0) + len(records)
        prefetched = bool(next_url) and more and _wants_next_page(self.args, self.pages, rows_after)
        if prefetched and next_url:
            fetch.prefetch(next_url)  # the next page travels while this one is written
        self._write(records, more)
        if not more or not next_url:
            return None
        if self.writer is not None and self.writer.full:  # the table's cap, and more pages remain
            self.writer.truncated = True
            return None
        if self.args.limit_pages is not None and self.pages >= self.args.limit_pages:
            self.stopped = "limit"
            return None
        return fetch.take() if prefetched else fetch.more(next_url)

    def _write(self, records: List[Dict[str, Any]], more: bool) -> None:
        if records and self.writer is None:
            # the SELECT list's order, the API's spelling of each name (select id -> Id)
            self.writer = make_writer(self.args.format, self.target, self.plan.start(records))
        if self.writer is not None:
            for values in self.plan.rows(records):
                self.writer.write(values)
        if self.progress is None and more and _show_progress(self.args, self.out):
            self.progress = _RowCounter(self.total)
        if self.progress is not None:
            self.progress.update(len(records))

    def finish(self) -> Writer:
        if self.writer is None:  # no records: the header (csv, table) or [] (json) still written
            self.writer = make_writer(self.args.format, self.target, self.plan.columns or [])
        self.writer.close()
        return self.writer


def _report_rows(args: argparse.Namespace, loop: _PageLoop) -> None:
    """The --json report and the summary on stderr: records, pages, where they went."""
    writer, pages, total = loop.writer, loop.pages, loop.total
    assert writer is not None  # finish() ran
    args.report.update(totalSize=total, done=loop.stopped != "limit" and not writer.truncated, recordCount=writer.rows)
    if loop.stopped == "limit":
        err(f"stopped after {pages} page(s) (--limit-pages); more records remain")
    if writer.truncated:
        err(f"the table shows the first {writer.rows} records: use --format csv (or json/jsonl, "
            "with --output FILE) for all of them")
    noun = "record" if writer.rows == 1 else "records"
    of = f" of {total}" if total is not None and total != writer.rows and not loop.is_count else ""
    err(f"{writer.rows} {noun}{of}, {pages} page{'s' if pages != 1 else ''}"
        + (f", written to {args.output}" if args.output else ""))


def _wants_next_page(args: argparse.Namespace, pages: int, rows_after: int) -> bool:
    """Whether the page after this one will be written (so it can be fetched meanwhile)."""
    if args.limit_pages is not None and pages >= args.limit_pages:
        return False
    return args.format != "table" or rows_after < TABLE_MAX_ROWS


def _query_parquet(args: argparse.Namespace, soql: str) -> int:
    """--format parquet: query_to_parquet's writer (typed columns, page by page) into the
    same OutputFile as the other formats; pyarrow, pandas and the path checked before the login."""
    if not args.output:
        raise UsageError("--format parquet writes a file: add --output FILE (e.g. --output accounts.parquet)")
    if args.limit_pages is not None:
        raise UsageError("--limit-pages does not apply to --format parquet: add a LIMIT to the SOQL instead")
    try:
        pa, pq = _pyarrow("--format parquet")
        pd = _pandas()
    except ImportError as exc:  # the cause names the module: "No module named 'pyarrow'"
        raise UsageError(f"--format parquet needs pyarrow and pandas ({exc.__cause__ or exc}): "
                         "pip install 'sfjwt-ext[pandas,arrow]', or use --format csv") from None
    with OutputFile(args.output, named="--output") as output:
        sf = connect_jwt(**connection_arguments(args))
        frames = _frames(pd, sf, soql, args.include_deleted, None if _isatty(sys.stderr) else False, "auto", None,
                         BULK_PARALLEL, "query_to_parquet")
        rows = _parquet_into(output, pa, pq, frames)
    args.report.update(done=True, recordCount=rows)
    err(f"{rows} record{'' if rows == 1 else 's'}, written to {args.output}")
    return EXIT_OK


def _query_json(args: argparse.Namespace, soql: str, out: IO[str]) -> int:
    """query --json: without --output, ``sf data query --json``'s document (the records as
    Salesforce returns them: attributes, nested parents); with --output, the data goes to the
    file in --format (default json) and the document says where and how much."""
    if not args.output:
        if args.format not in (None, "json"):
            raise UsageError(f"--json prints the records as JSON on stdout: --format {args.format} needs "
                             "--output FILE (or leave --format out)")
        return _query_records_json(args, soql, out)
    args.format = args.format or "json"
    code = _query_parquet(args, soql) if args.format == "parquet" else _query_rows(args, soql, io.StringIO())
    result = dict(args.report, outputFile=args.output, resultFormat=args.format)
    jsonout.write(out, jsonout.success(result, args.collected))
    return code


def _query_records_json(args: argparse.Namespace, soql: str, out: IO[str]) -> int:
    document = RecordsDocument()
    try:
        sf = connect_jwt(**connection_arguments(args))
        result = sf.query(soql, include_deleted=args.include_deleted)
        total: Optional[int] = result.get("totalSize")
        pages = 0
        while True:
            pages += 1
            document.add(result.get("records") or [])
            done = bool(result.get("done", True)) or not result.get("nextRecordsUrl")
            if done or (args.limit_pages is not None and pages >= args.limit_pages):
                break
            result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True,
                                   include_deleted=args.include_deleted)
        document.finish(out, total=total, done=done, collected=args.collected)
    finally:
        document.close()
    if not done:
        err(f"stopped after {pages} page(s) (--limit-pages); more records remain")
    err(f"{document.count} record{'' if document.count == 1 else 's'}, {pages} page{'s' if pages != 1 else ''}")
    return EXIT_OK
