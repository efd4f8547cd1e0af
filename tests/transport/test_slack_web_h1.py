"""The HTTP/1.1 codec of the Web API transport, checked against h11 on generated responses."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport.slack_web_h1 import ProtocolError, ResponseParser, encode_request

REQUEST = b"POST /api/x HTTP/1.1\r\nHost: slack\r\nContent-Length: 0\r\n\r\n"
TOKEN = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)
VALUE = st.binary(max_size=30).map(lambda b: bytes(c for c in b if 0x20 < c < 0x7F).decode())
RESERVED = {"content-length", "transfer-encoding", "connection"}


def parse(data: bytes, pieces: list[int] | None = None, *, max_body: int = 1 << 20):
    parser = ResponseParser(max_body=max_body)
    cuts = [*sorted({p % (len(data) + 1) for p in pieces or []}), len(data)]
    start = 0
    for cut in cuts:
        if cut == start:
            continue  # feeding b"" means the connection ended
        parser.feed(data[start:cut])
        start = cut
        answer = parser.answer()
        if answer is not None:
            return answer
    parser.feed(b"")
    return parser.answer()


def h11_parse(data: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    client = h11.Connection(h11.CLIENT)
    client.send(
        h11.Request(
            method="POST", target="/api/x", headers=[("Host", "slack"), ("Content-Length", "0")]
        )
    )
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")
    status, headers, body = 0, [], b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            status, headers = event.status_code, list(event.headers)
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return status, headers, body


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    server = h11.Connection(h11.SERVER)
    server.receive_data(REQUEST)
    assert isinstance(server.next_event(), h11.Request)
    server.next_event()
    out = b""
    if draw(st.booleans()):
        out += server.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
    headers = [
        (name, value)
        for name, value in draw(st.lists(st.tuples(TOKEN, VALUE), max_size=6))
        if name not in RESERVED
    ]
    status = draw(st.sampled_from([200, 201, 400, 404, 429, 500, 503]))
    chunks = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=5))
    if draw(st.booleans()):
        headers.append(("Content-Length", str(sum(map(len, chunks)))))
    else:
        headers.append(("Transfer-Encoding", "chunked"))
    out += server.send(h11.Response(status_code=status, headers=headers)) or b""
    for chunk in chunks:
        out += server.send(h11.Data(data=chunk)) or b""
    out += server.send(h11.EndOfMessage()) or b""
    return out


@given(data=responses(), pieces=st.lists(st.integers(0, 4000), max_size=8))
def test_parses_what_h11_parses_whatever_the_fragmentation(data: bytes, pieces: list[int]) -> None:
    answer = parse(data, pieces)
    assert answer is not None
    assert (answer.status, answer.headers, answer.body) == h11_parse(data)
    parser = ResponseParser(max_body=1 << 20)
    parser.feed(data)
    reusable = parser.answer()
    assert reusable is not None and reusable.keep_alive


def test_encode_request_and_refuse_header_injection() -> None:
    head = encode_request(b"POST", b"/api/a", [(b"Host", b"h"), (b"Content-Length", b"2")], b"{}")
    assert head == b"POST /api/a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"
    for bad in [(b"X", b"a\r\nEvil: 1"), (b"X\n", b"a"), (b"X:Y", b"a"), (b"X", b"a\n")]:
        with pytest.raises(ProtocolError, match="invalid header"):
            encode_request(b"GET", b"/", [bad], b"")


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),
    ],
)
def test_keep_alive_follows_the_server(data: bytes, keep_alive: bool) -> None:
    parser = ResponseParser(max_body=100)
    parser.feed(data)
    answer = parser.answer()
    assert answer is not None and answer.body == b"ok" and answer.keep_alive is keep_alive


def test_bodies_without_framing_run_to_the_end_and_some_answers_have_none() -> None:
    parser = ResponseParser(max_body=100)
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\nall of it")
    assert parser.answer() is None  # not over until the connection ends
    parser.feed(b"")
    answer = parser.answer()
    assert answer is not None and answer.body == b"all of it" and not answer.keep_alive
    for data, head in [
        (b"HTTP/1.1 204 No Content\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", True),
    ]:
        parser = ResponseParser(max_body=100, head_request=head)
        parser.feed(data)
        answer = parser.answer()
        assert answer is not None and answer.body == b"" and answer.keep_alive


def test_chunk_extensions_and_trailers_are_skipped() -> None:
    answer = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\nU: 2\r\n\r\n"
    )
    assert answer is not None and answer.body == b"abc"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "without sending a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "mid-response"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "mid-response"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "status code"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\n folded: 1\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "content-length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "content-length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer coding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "CRLF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", "too large"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", "too large"),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 101, "too large"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"x" * 70_000, "head too large"),
    ],
)
def test_malformed_answers_are_protocol_errors(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse(data, max_body=100)
