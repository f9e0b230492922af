"""sfjwt_ext.testing.core.http: Headers, Router, and the HTTPS server's wire behaviour (keep-alive,
chunked bodies, HEAD, 404/405, dropped connections, handler crashes)."""
from __future__ import annotations

import socket
import ssl
import threading
from typing import Iterator

import pytest
import requests

from sfjwt_ext.testing.core import tls
from sfjwt_ext.testing.core.http import (
    Headers,
    HTTPError,
    Request,
    Response,
    Router,
    ServerThread,
    json_response,
    text_response,
    xml_response,
)


def test_headers_are_case_insensitive() -> None:
    h = Headers({"Content-Type": "text/plain"})
    assert h["content-type"] == "text/plain" and "CONTENT-TYPE" in h
    h["X-Thing"] = "1"
    assert list(h) == ["Content-Type", "X-Thing"]
    del h["x-thing"]
    assert len(h) == 1


def test_request_helpers() -> None:
    req = Request.build("post", "/a%20b/?q=SELECT+1&x=1&x=2", Headers({"Content-Type": "application/json; charset=x"}),
                        b'{"a": 1}')
    assert req.method == "POST" and req.path == "/a b/"
    assert req.query == {"q": "SELECT 1", "x": "1"} and req.query_lists["x"] == ["1", "2"]
    assert req.content_type == "application/json" and req.json() == {"a": 1}
    with pytest.raises(HTTPError) as info:
        Request.build("POST", "/", Headers(), b"{nope").json()
    assert info.value.response.status == 400
    assert Request.build("POST", "/", Headers(), b"a=1&b=x%20y").form() == {"a": "1", "b": "x y"}


def test_router_roles_methods_and_errors() -> None:
    router = Router()
    router.add("instance", "GET", r"/things/(?P<id>\d+)", lambda r: json_response({"id": r.match.group("id")}))  # type: ignore[union-attr]
    router.add("*", "POST", r"/both", lambda r: text_response(r.role))
    ok = router.dispatch(Request.build("GET", "/things/7", Headers(), role="instance"))
    assert ok.status == 200 and ok.json() == {"id": "7"}
    assert router.dispatch(Request.build("GET", "/things/7", Headers(), role="login")).status == 404
    not_allowed = router.dispatch(Request.build("DELETE", "/things/7", Headers(), role="instance"))
    assert not_allowed.status == 405 and not_allowed.headers["Allow"] == "GET"
    assert router.dispatch(Request.build("POST", "/both", Headers(), role="login")).body == b"login"
    with pytest.raises(ValueError):
        router.add("other", "GET", "/", lambda r: Response())


@pytest.fixture
def server() -> Iterator[ServerThread]:
    router = Router()
    router.add("*", "POST", r"/echo", lambda r: Response(body=r.body, content_type="application/octet-stream"))
    router.add("*", "GET", r"/xml", lambda r: xml_response("<a/>"))
    router.add("*", "GET", r"/drop", lambda r: Response.dropped())

    def boom(r: Request) -> Response:
        raise RuntimeError("bug")

    router.add("*", "GET", r"/boom", boom)
    st = ServerThread(role="instance", app=router.dispatch, ssl_context=tls.server_ssl_context())
    st.start()
    yield st
    st.stop()


@pytest.fixture
def ca_file(tmp_path: "pytest.TempPathFactory") -> str:
    return tls.write_ca_file(str(tmp_path))


def test_keep_alive_chunked_head_and_errors(server: ServerThread, ca_file: str) -> None:
    base = f"https://127.0.0.1:{server.port}"
    with requests.Session() as s:
        assert s.post(base + "/echo", data=b"x" * 100_000, verify=ca_file).content == b"x" * 100_000
        chunked = s.post(base + "/echo", data=iter([b"ab", b"", b"cd", b"e"]), verify=ca_file)
        assert chunked.content == b"abcde"
        xml = s.get(base + "/xml", verify=ca_file)
        assert xml.text == "<a/>" and xml.headers["Content-Type"] == "application/xml;charset=UTF-8"
        head = s.head(base + "/xml", verify=ca_file)
        assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "4"
        assert s.get(base + "/boom", verify=ca_file).json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
        assert s.get(base + "/nothing", verify=ca_file).status_code == 404
        pools = s.get_adapter(base).poolmanager.pools
        opened = sum(pools[key].num_connections for key in pools.keys())
        assert opened == 1  # one keep-alive connection served every request
        with pytest.raises(requests.ConnectionError):
            s.get(base + "/drop", verify=ca_file)


def test_bad_chunked_body_is_400(server: ServerThread, ca_file: str) -> None:
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
            tls_sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            assert tls_sock.recv(100).startswith(b"HTTP/1.1 400")


def test_stop_with_a_stalled_handshake(ca_file: str) -> None:
    before = set(threading.enumerate())
    st = ServerThread(role="login", app=Router().dispatch, ssl_context=tls.server_ssl_context())
    st.start()
    raw = socket.create_connection(("127.0.0.1", st.port), timeout=5)  # TCP only, never says hello
    try:
        st.stop()
    finally:
        raw.close()
    assert set(threading.enumerate()) <= before
