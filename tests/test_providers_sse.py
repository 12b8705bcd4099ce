"""Server-sent events parsed from network chunks, however the network splits them."""

from __future__ import annotations

import pytest

from pointsman.providers.http import SseEvent, SseParser

STREAM = (b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
          b": a comment\n"
          b"data: first line\ndata: second line\n\n"
          b"id: 7\rdata: caf\xc3\xa9\r\r"
          b"data: [DONE]\n\n")
EXPECTED = [SseEvent("message_start", '{"a": 1}'), SseEvent("", "first line\nsecond line"),
            SseEvent("", "café"), SseEvent("", "[DONE]")]


def _parse(chunks: list[bytes]) -> list[SseEvent]:
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.feed(parser.end())


def test_one_chunk_gives_every_event() -> None:
    assert _parse([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_any_split_of_the_bytes_gives_the_same_events(size: int) -> None:
    chunks = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert _parse(chunks) == EXPECTED


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    assert _parse([b"data: x\r", b"\ndata: y\r", b"\n\r", b"\n"]) == [SseEvent("", "x\ny")]


def test_a_body_ending_in_cr_ends_its_event() -> None:
    assert _parse([b"data: last\r\r"]) == [SseEvent("", "last")]


def test_an_unterminated_event_is_not_dispatched() -> None:
    assert _parse([b"data: half"]) == []


LF_STREAM = (b": keep-alive\n\n"
             b"event: delta\ndata: {\"x\": 1}\n\n"
             b"data: one\ndata: two\n\n\n\n"
             b"data:tight\n\n"
             b"id: 3\ndata: [DONE]\n\n")
LF_EXPECTED = [SseEvent("delta", '{"x": 1}'), SseEvent("", "one\ntwo"), SseEvent("", "tight"),
               SseEvent("", "[DONE]")]


@pytest.mark.parametrize("size", [1, 2, 4, 9, 200])
def test_lf_only_streams_parse_the_same_however_split(size: int) -> None:
    chunks = [LF_STREAM[i:i + size] for i in range(0, len(LF_STREAM), size)]
    assert _parse(chunks) == LF_EXPECTED


def test_lf_and_crlf_mixed_between_reads() -> None:
    assert _parse([b"data: a\n\nda", b"ta: b\r\n\r\n", b"data: c\n", b"\n"]) == [
        SseEvent("", "a"), SseEvent("", "b"), SseEvent("", "c")]


DATA_ONLY = b"".join(b'data: {"n": %d, "t": "caf\xc3\xa9"}\n\n' % i for i in range(12)) + (
    b"data: [DONE]\n\n")
DATA_EXPECTED = [SseEvent("", f'{{"n": {i}, "t": "café"}}') for i in range(12)] + [
    SseEvent("", "[DONE]")]


@pytest.mark.parametrize("size", [1, 3, 10, 47, 100, len(DATA_ONLY)])
def test_reads_of_lone_data_lines_parse_the_same_however_split(size: int) -> None:
    """The usual stream (each event one ``data:`` line) takes a shortcut per read; reads
    that mix in anything else (a second data line, an event name, a comment, a blank
    block) take the line-by-line way: both give the same events."""
    chunks = [DATA_ONLY[i:i + size] for i in range(0, len(DATA_ONLY), size)]
    assert _parse(chunks) == DATA_EXPECTED
    mixed = (DATA_ONLY[:30] + b"data: more\ndata: x2\n\n: note\n\n\n\nevent: e\ndata: x\n\n"
             + DATA_ONLY[30:])  # after the first event
    events = _parse([mixed[i:i + size] for i in range(0, len(mixed), size)])
    assert events == [*DATA_EXPECTED[:1], SseEvent("", "more\nx2"), SseEvent("e", "x"),
                      *DATA_EXPECTED[1:]]
