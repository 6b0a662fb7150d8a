"""The pure core: URL validation, redaction, codecs, events, backoff (no I/O)."""

from __future__ import annotations

import random
import threading
from typing import Any
from xml.etree.ElementTree import Element

import pytest

import nbsocket as nbs
from nbsocket.core import redact
from nbsocket.core.backoff import Backoff, ReconnectPolicy
from nbsocket.core.codecs import get_codec
from nbsocket.core.urls import validate_url
from nbsocket.runtime.dispatch.lockable import Lockable


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://example.org/feed", "did you mean 'ws://example.org/feed'"),
        ("https://example.org/feed", "did you mean 'wss://example.org/feed'"),
        ("ftp://example.org", "scheme must be ws:// or wss://"),
        ("example.org/feed", "add the scheme"),
        ("", "empty"),
        ("ws://", "no host"),
        ("ws://host:99999/", "port"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_error(url: str, fragment: str) -> None:
    with pytest.raises(nbs.InvalidURLError, match=fragment):
        validate_url(url)


def test_non_string_url_is_refused() -> None:
    with pytest.raises(nbs.InvalidURLError, match="must be a string"):
        validate_url(42)


def test_good_urls_pass_and_are_stripped() -> None:
    assert validate_url("  wss://example.org/x?y=1 ") == "wss://example.org/x?y=1"
    assert validate_url("WS://127.0.0.1:8765/echo") == "WS://127.0.0.1:8765/echo"


def test_url_redaction_hides_credentials_and_token_like_parameters() -> None:
    shown = redact.redact_url("wss://alice:s3cretpw@example.org/feed?api_key=K123&symbol=ABC&token=T456")
    assert "alice" not in shown and "s3cretpw" not in shown
    assert "K123" not in shown and "T456" not in shown
    assert "symbol=ABC" in shown and "example.org/feed" in shown


def test_scrub_removes_registered_secrets_everywhere() -> None:
    redact.add_secret("tok-ABCDEFGH-999")
    assert redact.scrub("error with tok-ABCDEFGH-999 inside") == "error with *** inside"
    assert "tok-ABCDEFGH-999" not in redact.scrub("url?t=tok-ABCDEFGH-999")


def test_header_redaction() -> None:
    headers = {"Authorization": "Bearer abc.def.ghi", "Cookie": "sid=1", "X-Custom": "visible", "X-Mine": "hidden-value"}
    shown = redact.redact_headers(headers, secret_names=["X-Mine"])
    assert shown == {"Authorization": "***", "Cookie": "***", "X-Custom": "visible", "X-Mine": "***"}
    assert "abc.def.ghi" in redact.header_secrets(headers)


# --- codecs ---------------------------------------------------------------------------


def test_json_codec_both_ways() -> None:
    codec = get_codec("application/json; charset=utf-8")
    assert codec.decode('{"a": [1, 2]}') == {"a": [1, 2]}
    assert codec.decode(b'{"a": 1}') == {"a": 1}
    assert codec.encode({"a": 1}) == '{"a":1}'
    with pytest.raises(nbs.CodecError, match="invalid JSON"):
        codec.decode("{nope")
    with pytest.raises(nbs.CodecError, match="nested too deeply"):
        codec.decode("[" * 100_000 + "]" * 100_000)
    with pytest.raises(nbs.EncodeError, match="cannot encode"):
        codec.encode({"x": object()})


def test_suffix_types_use_the_base_codec() -> None:
    assert get_codec("application/vnd.api+json").decode('{"a":1}') == {"a": 1}
    assert isinstance(get_codec("application/atom+xml").decode("<a/>"), Element)


def test_csv_codec_parses_and_refuses_ragged_rows() -> None:
    codec = get_codec("text/csv")
    assert codec.decode("a,b\n1,2\n3,4\n") == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    with pytest.raises(nbs.CodecError, match="ragged CSV: row 3 has 3 fields"):
        codec.decode("a,b\n1,2\n3,4,5\n")
    assert codec.encode([{"a": 1, "b": 2}]) == "a,b\n1,2\n"


def test_xml_codec_is_safe_against_entity_expansion() -> None:
    codec = get_codec("application/xml")
    assert codec.decode("<r><x>1</x></r>").find("x").text == "1"
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
    )
    with pytest.raises(nbs.CodecError, match="unsafe XML refused"):
        codec.decode(bomb)


def test_text_and_octet_stream_codecs() -> None:
    assert get_codec("text/plain").decode(b"caf\xc3\xa9") == "café"
    with pytest.raises(nbs.CodecError, match="not UTF-8"):
        get_codec("text/plain").decode(b"\xff\xfe")
    assert get_codec("application/octet-stream").decode(b"\x00\x01") == b"\x00\x01"
    with pytest.raises(nbs.EncodeError, match="pass bytes"):
        get_codec("application/octet-stream").encode({"a": 1})


def test_custom_codec_registration() -> None:
    nbs.register_codec(
        "application/x-kv",
        lambda body: dict(p.split("=") for p in body.split(";")),
        lambda obj: ";".join(f"{k}={v}" for k, v in obj.items()),
        replace=True,
    )
    codec = get_codec("application/x-kv")
    assert codec.decode("a=1;b=2") == {"a": "1", "b": "2"}
    assert codec.encode({"a": 1}) == "a=1"
    with pytest.raises(ValueError, match="already registered"):
        nbs.register_codec("application/x-kv", str, str)
    with pytest.raises(ValueError, match="no codec for content type"):
        get_codec("application/x-unknown")


# --- events --------------------------------------------------------------------------------


def test_lockable_is_shared_and_synchronised() -> None:
    lockable = Lockable()
    lockable["n"] = 0

    def bump() -> None:
        for _ in range(10_000):
            with lockable as state:
                state["n"] = state["n"] + 1

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lockable["n"] == 40_000


# --- backoff -------------------------------------------------------------------------------


def test_backoff_grows_until_the_connection_is_stable() -> None:
    policy = ReconnectPolicy(initial=0.1, maximum=5, factor=2, jitter=0.5, stable_after=10)
    backoff = Backoff(policy, random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    assert all(0.05 <= d <= 5 for d in delays)
    assert delays[-1] > delays[0] * 8
    backoff.connection_lasted(1.0)  # short-lived: no reset
    assert backoff.attempt == 8
    backoff.connection_lasted(11.0)
    assert backoff.attempt == 0


def test_retry_rules() -> None:
    policy = ReconnectPolicy()
    assert policy.retries_close(1006) and policy.retries_close(1011) and policy.retries_close(1000)
    assert not policy.retries_close(1008) and not policy.retries_close(4001)
    assert ReconnectPolicy(retry_close_codes=frozenset({4001})).retries_close(4001)
    assert not policy.retries_status(401) and not policy.retries_status(403) and not policy.retries_status(404)
    assert policy.retries_status(500) and policy.retries_status(503) and policy.retries_status(429)


def test_to_datetime_turns_epoch_fields_into_utc_datetimes() -> None:
    import pandas as pd

    import nbsocket as nbs

    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime([1, 2], unit="s", utc=True),
            "socket": "s",
            "seq": [1, 2],
            "data.seq": [7, 8],
            "data.timestamp": [1795959659.99, 1795959660.5],
            "sent_at": [1795959659990, 1795959660500],
            "iso_time": ["2026-11-29T15:00:00Z", "2026-11-29T15:00:01Z"],
            "price": [1.0, 2.0],
        }
    )
    parsed = nbs.to_datetime(frame)
    for column in ("data.timestamp", "sent_at", "iso_time"):
        assert str(parsed[column].dt.tz) == "UTC", column
    assert parsed.loc[0, "data.timestamp"].floor("ms") == pd.Timestamp("2026-11-29T13:40:59.990", tz="UTC")
    assert parsed.loc[0, "sent_at"] == pd.Timestamp("2026-11-29T13:40:59.990", tz="UTC")  # milliseconds, guessed from the size
    assert parsed["data.seq"].tolist() == [7, 8] and parsed["price"].tolist() == [1.0, 2.0]  # not times: untouched
    assert frame["data.timestamp"].dtype == "float64"  # a copy; the original is kept
    only = nbs.to_datetime(frame, "data.timestamp", unit="s")
    assert str(only["data.timestamp"].dt.tz) == "UTC" and only["sent_at"].dtype == frame["sent_at"].dtype
    import pytest

    with pytest.raises(KeyError, match="no column 'nope'"):
        nbs.to_datetime(frame, ["nope"])


def test_the_panel_table_sets_nbsocket_columns_apart_from_message_fields() -> None:
    import pandas as pd

    from nbsocket.widgets.render import table_html

    rows = pd.DataFrame({"timestamp": pd.to_datetime([1], unit="s", utc=True), "socket": "s", "seq": [1], "data.seq": [9]})
    html = table_html(rows, 1)
    assert 'class="nbsocket-own-column" title="nbsocket&#x27;s column: message number on this socket, from 1"' in html
    assert "the message&#x27;s own field &#x27;seq&#x27;" in html


@pytest.mark.parametrize("fast", [True, False], ids=["msgspec", "stdlib"])
def test_json_decoding_gives_the_standard_librarys_results_with_or_without_the_fast_decoder(fast: bool, monkeypatch: Any) -> None:
    import json
    import math

    from nbsocket.core import codecs

    if not fast:
        monkeypatch.setattr(codecs, "_fast_loads", None)
    elif codecs._fast_loads is None:
        pytest.fail("the test extra installs msgspec: the fast decoder should be there")
    for body in [
        '{"a":1,"b":[1.5,"x",null,true]}',
        '{"n":123456789012345678901234567890}',
        '"\\ud800"',
        "[1e400]",
        '{"a":1,"a":2}',
        b'{"bytes":1}',
        "-0",
        "0.1",
    ]:
        assert codecs.decode_json(body) == json.loads(body)
    assert math.isnan(codecs.decode_json("NaN"))
    with pytest.raises(codecs.CodecError, match="invalid JSON"):
        codecs.decode_json("{bad")
