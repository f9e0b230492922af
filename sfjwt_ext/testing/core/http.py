"""A small threaded HTTPS server framework for the local org.

This module knows nothing about Salesforce. It gives the rest of ``sfjwt_ext.testing``
(``org.py`` and the API modules) four things:

``Request``
    What a handler receives: ``method``, ``path`` (no query string), ``query`` (first value
    of each parameter), ``query_lists`` (all values), ``headers`` (case-insensitive),
    ``body`` (bytes; ``Transfer-Encoding: chunked`` already decoded), ``role`` (which host
    received it: ``"login"`` or ``"instance"``), ``org`` (the ``LocalOrg``), ``match`` (the
    ``re.Match`` of the route's path regex, so ``request.match.group("id")`` works) and
    helpers ``json()``, ``form()``, ``text()``, ``content_type``, ``header(name)``.

``Response``
    What a handler returns: ``status``, ``body`` (bytes), ``headers`` (dict), ``content_type``,
    and ``drop`` (``True`` = close the socket without writing any response, as a crashed
    proxy would). Build them with ``json_response``, ``xml_response``, ``text_response``,
    ``empty_response`` or ``Response.dropped()``. ``compress=True`` gzips the body
    (``Content-Encoding: gzip``) when the request's ``Accept-Encoding`` allows it.

``HTTPError``
    An exception carrying a ``Response``; a handler (or a helper it calls, such as
    ``LocalOrg.require_session``) may raise it and the server answers with its response.

``Router``
    ``router.add(role, method, path_regex, handler)`` registers ``handler(request) ->
    Response`` for a host role (``"login"``, ``"instance"`` or ``"*"`` for both), an HTTP
    method (``"*"`` for any) and a regex that must match the whole path (``re.fullmatch``).
    ``router.add_guard(guard)`` runs ``guard(request)`` first (a Response it returns is the answer).
    ``router.dispatch(request)`` answers 404 (no route for the path) or 405 (path known,
    method not) with Salesforce's JSON error shape.

``HTTPSServer`` / ``ServerThread`` run one TLS listener: ``ThreadingHTTPServer`` with
daemon threads, ``TCP_NODELAY`` on every accepted socket, HTTP/1.1 keep-alive with
``Content-Length``, responses written in one ``sendall``. ``ServerThread.stop()`` closes the
listener *and* every open keep-alive connection, then joins all threads, so nothing is left
behind.
"""
from __future__ import annotations

import gzip
import json
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Mapping, MutableMapping, Optional, Tuple, Union
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "Headers",
    "Request",
    "Response",
    "HTTPError",
    "Handler",
    "Router",
    "json_response",
    "xml_response",
    "text_response",
    "empty_response",
    "accepts_gzip",
    "parse_json",
    "json_value_position",
    "JsonSyntaxError",
    "MAX_JSON_DEPTH",
    "HTTPSServer",
    "ServerThread",
    "JSON_CONTENT_TYPE",
    "XML_CONTENT_TYPE",
]

log = logging.getLogger("sfjwt_ext.testing.core.http")

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
XML_CONTENT_TYPE = "application/xml;charset=UTF-8"
SOAP_CONTENT_TYPE = "text/xml;charset=UTF-8"

_MAX_BODY = 256 * 1024 * 1024


class Headers(MutableMapping[str, str]):
    """Case-insensitive header mapping that remembers the original spelling."""

    def __init__(self, items: Optional[Any] = None) -> None:
        self._data: Dict[str, Tuple[str, str]] = {}
        if items:
            pairs = items.items() if hasattr(items, "items") else items
            for key, value in pairs:
                self[key] = value

    def __getitem__(self, key: str) -> str:
        return self._data[key.lower()][1]

    def __setitem__(self, key: str, value: str) -> None:
        self._data[key.lower()] = (key, str(value))

    def __delitem__(self, key: str) -> None:
        del self._data[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Headers
    body: bytes = b""
    role: str = "instance"
    org: Any = None
    query_lists: Dict[str, List[str]] = field(default_factory=dict)
    raw_path: str = ""
    match: Optional["re.Match[str]"] = None
    client_address: Tuple[str, int] = ("127.0.0.1", 0)

    @classmethod
    def build(cls, method: str, target: str, headers: Headers, body: bytes = b"", *,
              role: str = "instance", org: Any = None) -> "Request":
        parts = urlsplit(target)
        query_lists = parse_qs(parts.query, keep_blank_values=True)
        return cls(method=method.upper(), path=unquote(parts.path) or "/",
                   query={k: v[0] for k, v in query_lists.items()}, headers=headers, body=body,
                   role=role, org=org, query_lists=query_lists, raw_path=target)

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.headers.get(name, default)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased (``""`` when absent)."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as strict JSON (``parse_json``); HTTPError 400 JSON_PARSER_ERROR when it is not."""
        try:
            return parse_json(self.body)
        except JsonSyntaxError as exc:
            raise HTTPError(json_response([{"message": str(exc), "errorCode": "JSON_PARSER_ERROR"}],
                                          status=400)) from None

    def form(self) -> Dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value of each key)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


#: deepest nesting of arrays and objects a JSON body may have (Salesforce's parser has a limit too)
MAX_JSON_DEPTH = 100
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null'
                         r'|[\[\]{}:,]|\S')
_JSON_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_JSON_PAIRS = re.compile(rb"\[\]|\{\}")


class JsonSyntaxError(ValueError):
    """A body that is not JSON as Salesforce's parser reads it; ``str()`` is the message, with
    Jackson's ``at [line:L, column:C]``."""


class _BadToken(Exception):
    """A JSON token the strict parser refuses (raised inside json.loads' hooks)."""

    def __init__(self, token: str, message: str) -> None:
        super().__init__(message)
        self.token = token


LF = "\n"


def json_position(text: str, offset: int) -> str:
    """``at [line:L, column:C]`` for a 0-based character ``offset`` of ``text`` (1-based, as Jackson)."""
    line = text.count("\n", 0, offset) + 1
    return f"at [line:{line}, column:{offset - (text.rfind(LF, 0, offset) + 1) + 1}]"


def _shallow(body: bytes) -> bool:
    """True when the brackets of ``body`` (those in strings too) nest at most MAX_JSON_DEPTH deep:
    innermost pairs are struck out level by level, at C speed. False: deeper, or unsure."""
    brackets = body.translate(None, _JSON_NOT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return True
        fewer = _JSON_PAIRS.sub(b"", brackets)
        if fewer == brackets:
            return False
        brackets = fewer
    return not brackets


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether decoded JSON nests arrays and objects more than ``limit`` levels (no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep(text: str) -> JsonSyntaxError:
    """The error for a body nested past MAX_JSON_DEPTH, at the bracket that passes it (strings do not count)."""
    depth, offset = 0, 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                offset = match.start()
                break
        elif token in ("]", "}"):
            depth -= 1
    return JsonSyntaxError(f"Document nesting depth ({MAX_JSON_DEPTH + 1}) exceeds the maximum allowed "
                           f"({MAX_JSON_DEPTH}) {json_position(text, offset + 1)}")


def _no_constant(name: str) -> Any:
    raise _BadToken(name, f"Non-standard token '{name}': enable JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS to allow")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BadToken(text, f"Numeric value ({text}) out of range of double")
    return value


def parse_json(body: Union[bytes, str]) -> Any:
    """``body`` as JSON, strictly: NaN / Infinity and numbers past a double refused, at most
    MAX_JSON_DEPTH levels; an empty body is None. JsonSyntaxError names the place as Jackson does."""
    try:
        text = body if isinstance(body, str) else body.decode("utf-8")
    except UnicodeDecodeError as exc:
        assert isinstance(body, bytes)
        raise JsonSyntaxError(f"Invalid UTF-8 start byte 0x{body[exc.start]:02x} at [line:1, column:{exc.start + 1}]") \
            from None
    try:
        value = json.loads(text or "null", parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # deeper than the interpreter's stack: deeper than the limit too
        raise _too_deep(text) from None
    except _BadToken as exc:  # the first place the token stands outside a string
        where = next((m.end() for m in _JSON_TOKEN.finditer(text) if m.group() == exc.token), 0)
        raise JsonSyntaxError(f"{exc} {json_position(text, where)}") from None
    except json.JSONDecodeError as exc:
        char = text[exc.pos] if exc.pos < len(text) else ""
        seen = f"Unexpected character ('{char}' (code {ord(char)}))" if char else "Unexpected end-of-input"
        raise JsonSyntaxError(f"{seen}: {exc.msg.lower()} {json_position(text, exc.pos + 1)}") from None
    if not _shallow(body if isinstance(body, bytes) else text.encode("utf-8")) and \
            _deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep(text)
    return value


def json_value_position(body: bytes, key: str, value: Any) -> str:
    """Where the body gives ``key`` the value ``value``: Jackson's ``at [line:L, column:C]``
    just past the value's token (past the ``[`` / ``{`` of an array or object); "" if absent."""
    text = body.decode("utf-8", "replace")
    stack: List[str] = []
    pending: Optional[str] = None
    expect_key = False
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if expect_key and token.startswith('"'):
            pending, expect_key = json.loads(token), False
            continue
        if token in (":",):
            continue
        if pending is not None and token not in (",", "]", "}"):
            if pending.lower() == key.lower() and _same(token, value):
                return json_position(text, match.end())
            pending = None
        if token in ("[", "{"):
            stack.append(token)
            expect_key = token == "{"
        elif token in ("]", "}") and stack:
            stack.pop()
        elif token == "," and stack and stack[-1] == "{":
            expect_key = True
    return ""


def _same(token: str, value: Any) -> bool:
    if token == "[":
        return isinstance(value, list)
    if token == "{":
        return isinstance(value, dict)
    try:
        decoded = json.loads(token)
    except ValueError:
        return False
    return decoded == value and type(decoded) is type(value)


@dataclass
class Response:
    """What a handler returns. ``drop=True`` closes the connection without any response."""

    status: int = 200
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    content_type: Optional[str] = JSON_CONTENT_TYPE
    drop: bool = False
    #: gzip the body (``Content-Encoding: gzip``) when the request's ``Accept-Encoding`` allows it
    compress: bool = False

    @classmethod
    def dropped(cls) -> "Response":
        return cls(status=0, drop=True)

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class HTTPError(Exception):
    """Raise from a handler to answer with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


Handler = Callable[[Request], Response]


def json_response(data: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None) -> Response:
    """``data`` serialised as JSON with ``application/json;charset=UTF-8``."""
    body = json.dumps(data, separators=(",", ":"), default=str).encode("utf-8")
    return Response(status=status, body=body, headers=dict(headers or {}), content_type=JSON_CONTENT_TYPE)


def xml_response(data: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None,
                 content_type: str = XML_CONTENT_TYPE) -> Response:
    """An XML document (str or bytes). For SOAP pass ``content_type=SOAP_CONTENT_TYPE``."""
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return Response(status=status, body=body, headers=dict(headers or {}), content_type=content_type)


def text_response(text: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None,
                  content_type: str = "text/plain;charset=UTF-8") -> Response:
    body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return Response(status=status, body=body, headers=dict(headers or {}), content_type=content_type)


def empty_response(status: int = 204, headers: Optional[Mapping[str, str]] = None) -> Response:
    return Response(status=status, body=b"", headers=dict(headers or {}), content_type=None)


def not_found(path: str) -> Response:
    return json_response([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
                         status=404)


class Router:
    """Routes ``(role, method, path)`` to handlers. Thread-safe; later ``add`` calls win."""

    def __init__(self) -> None:
        self._routes: List[Tuple[str, str, "re.Pattern[str]", Handler]] = []
        self._guards: List[Callable[[Request], Optional[Response]]] = []
        self._lock = threading.Lock()

    def add_guard(self, guard: Callable[[Request], Optional[Response]]) -> None:
        """Run ``guard(request)`` before routing every request; a Response it returns is the
        answer (what applies to a whole URL space, e.g. a retired API version)."""
        with self._lock:
            self._guards.append(guard)

    def add(self, role: str, method: str, path_regex: str, handler: Handler) -> None:
        """Register ``handler`` for ``role`` ("login" | "instance" | "*"), ``method`` ("GET",
        ..., or "*") and ``path_regex`` (matched with ``re.fullmatch`` against the decoded
        path without query string; named groups end up in ``request.match``)."""
        if role not in ("login", "instance", "*"):
            raise ValueError(f"role must be 'login', 'instance' or '*', not {role!r}")
        compiled = re.compile(path_regex)
        with self._lock:
            self._routes.insert(0, (role, method.upper(), compiled, handler))

    def find(self, role: str, method: str, path: str) -> Tuple[Optional[Handler], Optional["re.Match[str]"], List[str]]:
        """``(handler, match, allowed_methods)``; handler None when nothing matches."""
        allowed: List[str] = []
        with self._lock:
            routes = list(self._routes)
        for r_role, r_method, pattern, handler in routes:
            if r_role != "*" and r_role != role:
                continue
            m = pattern.fullmatch(path)
            if m is None:
                continue
            if r_method == "*" or r_method == method or (r_method == "GET" and method == "HEAD"):
                return handler, m, allowed
            allowed.append(r_method)
        return None, None, allowed

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            guards = list(self._guards)
        for guard in guards:
            answer = guard(request)
            if answer is not None:
                return answer
        handler, match, allowed = self.find(request.role, request.method, request.path)
        if handler is None:
            if allowed:
                return json_response(
                    [{"errorCode": "METHOD_NOT_ALLOWED",
                      "message": f"HTTP Method '{request.method}' not allowed. Allowed are {','.join(sorted(set(allowed)))}"}],
                    status=405, headers={"Allow": ", ".join(sorted(set(allowed)))})
            return not_found(request.path)
        request.match = match
        try:
            return handler(request)
        except HTTPError as exc:
            return exc.response


_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 300: "Multiple Choices", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 410: "Gone", 415: "Unsupported Media Type", 429: "Too Many Requests",
    500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def accepts_gzip(accept_encoding: Optional[str]) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip``, ``x-gzip`` or ``*`` with q > 0)."""
    for item in (accept_encoding or "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip()
        if q.lower().startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sfjwt-local-org"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this; stop() closes them at once
    server: "HTTPSServer"

    def setup(self) -> None:
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.server.role, format % args)

    # every method goes through one place
    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ssl.SSLError as exc:
            log.debug("TLS error on %s host: %s", self.server.role, exc)
            self.close_connection = True
        except (ConnectionError, OSError) as exc:
            log.debug("connection error on %s host: %s", self.server.role, exc)
            self.close_connection = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks: List[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise _BadRequest("connection closed inside chunked body")
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise _BadRequest(f"bad chunk size {size_text!r}") from None
                if size == 0:
                    while True:  # trailers up to the blank line
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > _MAX_BODY:
                    raise _BadRequest("body too large")
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise _BadRequest("connection closed inside a chunk")
                chunks.append(chunk)
                self.rfile.readline(3)  # CRLF after the chunk
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _BadRequest(f"bad Content-Length {length!r}") from None
        if n < 0 or n > _MAX_BODY:
            raise _BadRequest("bad Content-Length")
        body = self.rfile.read(n)
        if len(body) != n:
            raise _BadRequest("connection closed inside the body")
        return body

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self._write(text_response(str(exc), status=400), head=False)
            self.close_connection = True
            return
        headers = Headers(self.headers.items())
        request = Request.build(self.command, self.path, headers, body, role=self.server.role,
                                org=self.server.context)
        request.client_address = self.client_address
        try:
            response = self.server.app(request)
        except HTTPError as exc:
            response = exc.response
        except Exception:  # a bug in a handler: answer 500 like Salesforce, keep serving
            log.exception("handler failed for %s %s", self.command, request.path)
            response = json_response([{"errorCode": "UNKNOWN_EXCEPTION",
                                       "message": "An unexpected error occurred in the local org"}], status=500)
        if response.drop:
            self.close_connection = True
            try:
                socket.socket.shutdown(self.request, socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(response, head=self.command == "HEAD")

    def _write(self, response: Response, *, head: bool) -> None:
        if response.compress and response.body and accepts_gzip(self.headers.get("Accept-Encoding")):
            # level 1: the local org should spend its CPU on serving, not on squeezing bytes
            response.body = gzip.compress(response.body, compresslevel=1)
            response.headers["Content-Encoding"] = "gzip"
            response.headers.setdefault("Vary", "Accept-Encoding")
        reason = _REASONS.get(response.status, "Status")
        lines = [f"HTTP/1.1 {response.status} {reason}",
                 f"Date: {self.date_time_string()}"]
        names = {k.lower() for k in response.headers}
        if response.content_type and "content-type" not in names:
            lines.append(f"Content-Type: {response.content_type}")
        for key, value in response.headers.items():
            if key.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            lines.append(f"{key}: {value}")
        lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection or (self.headers.get("Connection", "").lower() == "close"):
            self.close_connection = True
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head:
            data += response.body
        self.wfile.write(data)
        self.log_request(response.status, len(response.body))


class HTTPSServer(ThreadingHTTPServer):
    """One TLS listener. ``app(request) -> Response`` handles every request."""

    daemon_threads = True
    block_on_close = False  # connection threads are tracked and joined by join_handlers()
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: Tuple[str, int], *, role: str, app: Callable[[Request], Response],
                 ssl_context: ssl.SSLContext, context: Any = None) -> None:
        self.role = role
        self.app = app
        self.context = context
        self._ssl_context = ssl_context
        self._connections: "set[socket.socket]" = set()
        self._conn_threads: "set[threading.Thread]" = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> Tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # the TLS handshake happens lazily in the handler's thread, never in the accept loop
        tls = self._ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        # our own thread bookkeeping: ThreadingMixIn does not join daemon threads on close
        thread = threading.Thread(target=self._run_connection, args=(request, client_address),
                                  name=f"sfjwt-local-org-{self.role}-conn", daemon=True)
        with self._conn_lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _run_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._conn_lock:
                self._conn_threads.discard(threading.current_thread())

    def join_handlers(self, timeout: float = 30.0) -> None:
        """Wait for every connection thread to end (after ``close_connections``)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._conn_lock:
                threads = list(self._conn_threads)
            if not threads:
                return
            for thread in threads:
                thread.join(max(deadline - time.monotonic(), 0.0))
            if time.monotonic() >= deadline:
                log.warning("%d connection thread(s) of the %s host still running after stop()",
                            len(threads), self.role)
                return

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        try:
            socket.socket.shutdown(request, socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s on %s host", client_address, self.role, exc_info=True)

    def close_connections(self) -> None:
        """Shut every open connection so blocked handler threads wake up and exit."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
            except OSError:
                pass


class ServerThread:
    """Runs an ``HTTPSServer`` in a daemon thread. ``stop()`` leaves no thread or socket."""

    def __init__(self, *, role: str, app: Callable[[Request], Response], ssl_context: ssl.SSLContext,
                 context: Any = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = HTTPSServer((host, port), role=role, app=app, ssl_context=ssl_context, context=context)
        self.role = role
        self.host = host
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"sfjwt-local-org-{role}-{self.port}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the accept loop to end without waiting (lets several servers stop in parallel)."""
        self.server._BaseServer__shutdown_request = True  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._thread.is_alive():
            self.request_stop()
            self._thread.join()
        self.server.server_close()  # closes the listener
        self.server.close_connections()
        self.server.join_handlers()
