"""The doors' request headers (gateway/app.py ``IndexedHeaders``): the same answers as
Starlette's list scans, from a dict built once."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from pointsman.gateway.app import IndexedHeaders

RAW = [(b"host", b"x"), (b"x-api-key", b"k1"), (b"accept", b"a"), (b"x-api-key", b"k2"),
       (b"x-pointsman-user", b"ada\xe9")]


@pytest.mark.parametrize("name", ["x-api-key", "X-Api-Key", "host", "x-pointsman-user",
                                  "missing", "authorization"])
def test_lookups_answer_as_starlettes_do(name: str) -> None:
    ours, theirs = IndexedHeaders(scope={"headers": RAW}), Headers(scope={"headers": RAW})
    assert ours.get(name) == theirs.get(name)
    assert ours.get(name, "none") == theirs.get(name, "none")
    assert (name in ours) == (name in theirs)
    if name in theirs:
        assert ours[name] == theirs[name]
    else:
        with pytest.raises(KeyError):
            ours[name]
    assert ours.getlist(name) == theirs.getlist(name)


def test_everything_else_is_starlettes() -> None:
    ours = IndexedHeaders(scope={"headers": RAW})
    assert ours.get("x-api-key") == "k1"  # a repeated header: the first value
    assert ours.getlist("x-api-key") == ["k1", "k2"]
    assert ours.items() == Headers(scope={"headers": RAW}).items()
    assert len(ours) == 5
