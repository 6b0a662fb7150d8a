"""The STOMP protocol object on its own (sans-I/O: no network, no loop)."""

from __future__ import annotations

import json

import pytest

from nbsocket.core.protocols.base import Close, Deliver, Housekeeping, Malformed, Ready, Refused, Reply, Report, Send
from nbsocket.core.protocols.stomp import STOMP, StompAck
from nbsocket.core.protocols.stomp_frames import StompFrame, decode_body, encode_frame, parse_frames
from nbsocket.errors import InvalidOptionError, ProtocolError

CONNECTED = "CONNECTED\nversion:1.2\nserver:RabbitMQ/3.10.8\nsession:sess-1\nheart-beat:{}\n\n\x00"


def frame(command: str, headers: dict[str, str] | None = None, body: str | bytes = b"") -> bytes:
    """Wire bytes of a frame the way a server would write it."""
    return encode_frame(command, headers, body.encode() if isinstance(body, str) else body)


def connected(server_heartbeat: str = "0,0", **options) -> STOMP:
    """A STOMP object past its handshake at t=0."""
    stomp = STOMP(login="guest", passcode="guest", **options)
    stomp.start(0.0)
    actions = stomp.receive(CONNECTED.format(server_heartbeat), 0.0)
    assert isinstance(actions[-1], Ready)
    return stomp


def parse_one(wire: str | bytes) -> StompFrame:
    (item,) = parse_frames(wire)
    assert isinstance(item, StompFrame), item
    return item


# --- framing ---------------------------------------------------------------------------------


def test_header_escaping_round_trips():
    wire = encode_frame("SEND", {"destination": "/q/a", "odd:key": "line1\nline2\r\\end:"}, b"x")
    assert b"odd\\ckey:line1\\nline2\\r\\\\end\\c\n" in wire
    parsed = parse_one(wire)
    assert parsed.headers["odd:key"] == "line1\nline2\r\\end:"
    assert parsed.body == b"x"


def test_connect_and_connected_headers_are_not_escaped():
    wire = encode_frame("CONNECT", {"passcode": "a:b\\c"})
    assert b"passcode:a:b\\c\n" in wire
    parsed = parse_one(b"CONNECTED\nversion:1.2\nserver:a\\b\n\n\x00")
    assert parsed.headers["server"] == "a\\b"


def test_undefined_escape_is_malformed_not_raised():
    (item,) = parse_frames(b"MESSAGE\ndestination:/q/a\\t\n\nbody\x00")
    assert isinstance(item, Malformed) and "escape" in item.error


def test_crlf_line_ends_repeated_headers_and_content_length_with_nul_in_body():
    parsed = parse_one(b"MESSAGE\r\nfoo:first\r\nfoo:second\r\ncontent-length:3\r\n\r\na\x00b\x00")
    assert parsed.headers["foo"] == "first"  # the first occurrence wins
    assert parsed.body == b"a\x00b"


def test_several_frames_and_heartbeats_in_one_message():
    wire = b"\n" + frame("RECEIPT", {"receipt-id": "r1"}) + b"\n\r\n" + frame("RECEIPT", {"receipt-id": "r2"}) + b"\n"
    items = parse_frames(wire)
    assert [None if i is None else i.headers["receipt-id"] for i in items] == [None, "r1", None, "r2", None]


def test_content_length_counts_octets_of_text_messages():
    body = "héllo ✓"
    text = f"MESSAGE\ncontent-length:{len(body.encode())}\n\n{body}\x00"
    assert parse_one(text).body.decode() == body


@pytest.mark.parametrize(
    "wire, words",
    [
        (b"MESSAGE\ndestination:/q\n\nno terminator", "NUL"),
        (b"MESSAGE\ndestination:/q", "head"),
        (b"MESSAGE\nno-colon-here\n\n\x00", "without ':'"),
        (b"message\n\n\x00", "command"),
        (b"MESSAGE\ncontent-length:10\n\nshort\x00", "10 octets"),
        (b"MESSAGE\ncontent-length:x\n\n\x00", "content-length"),
        (b"MESSAGE\nk:\xff\n\n\x00", "UTF-8"),
    ],
)
def test_malformed_frames_become_malformed_actions(wire, words):
    stomp = connected()
    actions = stomp.receive(wire, 1.0)
    assert len(actions) == 1 and isinstance(actions[0], Malformed)
    assert words in actions[0].error


def test_parsing_resumes_after_a_malformed_frame():
    stomp = connected()
    wire = b"MESSAGE\nbroken\n\n\x00" + frame("RECEIPT", {"receipt-id": "r9"})
    actions = stomp.receive(wire, 1.0)
    assert isinstance(actions[0], Malformed)
    assert actions[1] == Reply("r9", value={"receipt-id": "r9"})


def test_heartbeat_is_a_message_of_eols_only():
    stomp = connected()
    assert stomp.receive("\n", 1.0) == [Housekeeping("heart-beat")]
    assert stomp.receive(b"\r\n\n", 1.0) == [Housekeeping("heart-beat")]
    assert stomp.receive(b"\n" + frame("RECEIPT", {"receipt-id": "r"}) + b"\n", 1.0) == [Reply("r", value={"receipt-id": "r"})]


def test_unknown_server_command_is_malformed():
    stomp = connected()
    (action,) = stomp.receive(frame("BOGUS"), 1.0)
    assert isinstance(action, Malformed) and "BOGUS" in action.error


# --- options -----------------------------------------------------------------------------------


def test_identity_and_options():
    assert STOMP.name == "stomp"
    assert STOMP.subprotocols == ("v12.stomp", "v11.stomp", "v10.stomp")
    assert STOMP.secret_options == ("passcode",)
    with pytest.raises(InvalidOptionError):
        STOMP(vhost="/")
    with pytest.raises(InvalidOptionError):
        STOMP(ack="sometimes")
    with pytest.raises(InvalidOptionError):
        STOMP(heartbeat=(1000,))
    with pytest.raises(InvalidOptionError):
        STOMP(heartbeat=(-1, 0))
    with pytest.raises(InvalidOptionError):
        STOMP(passcode=123)


# --- handshake ---------------------------------------------------------------------------------


def test_start_sends_connect_with_credentials_host_and_heartbeat():
    stomp = STOMP(login="me", passcode="s3cret", host="vh", heartbeat=(4000, 6000))
    (wire,) = stomp.start(0.0)
    assert isinstance(wire, str)
    parsed = parse_one(wire)
    assert parsed.command == "CONNECT"
    assert parsed.headers["accept-version"].split(",")[0] == "1.2"
    assert parsed.headers | {"accept-version": ""} == {
        "accept-version": "",
        "host": "vh",
        "login": "me",
        "passcode": "s3cret",
        "heart-beat": "4000,6000",
    }
    assert not stomp.ready


def test_connect_without_credentials_leaves_them_out():
    parsed = parse_one(STOMP().start(0.0)[0])
    assert "login" not in parsed.headers and "passcode" not in parsed.headers


def test_connected_makes_ready_with_info():
    stomp = STOMP()
    stomp.start(0.0)
    (ready,) = stomp.receive(CONNECTED.format("2000,20000") + "\n", 0.5)  # RabbitMQ ends frames with an EOL
    assert stomp.ready
    assert ready == Ready({"version": "1.2", "server": "RabbitMQ/3.10.8", "session": "sess-1", "heart-beat": (20000, 10000)})


def test_error_before_connected_is_refused_with_the_servers_reason():
    stomp = STOMP(login="guest", passcode="wrong")
    stomp.start(0.0)
    error = frame("ERROR", {"message": "Access refused for user 'guest'", "content-type": "text/plain"}, "Login failed\n")
    (refused,) = stomp.receive(error, 0.1)
    assert refused == Refused("Access refused for user 'guest'; Login failed")
    assert not stomp.ready


def test_error_after_connected_is_a_report_not_a_handler_event():
    stomp = connected()
    (action,) = stomp.receive(frame("ERROR", {"message": "not_found"}, "no queue 'x'"), 1.0)
    assert action == Report("StompError", "ERROR from the broker: not_found; no queue 'x'")


def test_error_with_receipt_id_fails_that_receipt_with_the_brokers_message_and_headers():
    stomp = connected()
    receipt_id, _ = stomp.publish_with_receipt("/queue/a", "x")
    headers = {"message": "access_refused", "receipt-id": receipt_id}
    reply, report = stomp.receive(frame("ERROR", headers), 1.0)
    assert reply == Reply(receipt_id, error={"message": "access_refused", "code": None, "data": headers})
    assert isinstance(report, Report) and "SEND to /queue/a" in report.message and "access_refused" in report.message


RABBIT_UNKNOWN = "'/bogus/x' is not a valid destination.\nValid destination types are: /temp-queue, /exchange, /topic, /queue.\n"


def test_error_without_receipt_id_refuses_the_oldest_awaited_frame_that_it_names():
    """RabbitMQ's refusal of an invalid destination: no receipt-id, the destination quoted, the connection kept."""
    stomp = connected()
    refused, _ = stomp.publish_with_receipt("/bogus/x", "x")
    later, _ = stomp.publish_with_receipt("/queue/ok", "y")
    reply, report = stomp.receive(frame("ERROR", {"message": "Unknown destination"}, RABBIT_UNKNOWN), 1.0)
    assert reply.id == refused and reply.error["message"].startswith("Unknown destination; '/bogus/x' is not")
    assert isinstance(report, Report)
    assert stomp.receive(frame("RECEIPT", {"receipt-id": later}), 1.1) == [Reply(later, value={"receipt-id": later})]


def test_error_naming_another_destination_is_not_pinned_on_the_oldest_awaited_frame():
    stomp = connected()
    waiting, _ = stomp.publish_with_receipt("/queue/ok", "y")
    (report,) = stomp.receive(frame("ERROR", {"message": "Unknown destination"}, RABBIT_UNKNOWN), 1.0)
    assert isinstance(report, Report) and "/bogus/x" in report.message
    assert stomp.receive(frame("RECEIPT", {"receipt-id": waiting}), 1.1) == [Reply(waiting, value={"receipt-id": waiting})]


def test_refused_subscription_ends_and_is_never_sent_again():
    stomp = connected()
    good, _, (good_wire,) = stomp.subscribe("/queue/ok")
    bad, _, (bad_wire,) = stomp.subscribe("/bogus/x")
    good_receipt, bad_receipt = parse_one(good_wire).headers["receipt"], parse_one(bad_wire).headers["receipt"]
    assert stomp.receive(frame("RECEIPT", {"receipt-id": good_receipt}), 1.0) == [
        Housekeeping(f"receipt for SUBSCRIBE {good} (/queue/ok)")
    ]
    (report,) = stomp.receive(frame("ERROR", {"message": "Unknown destination"}, RABBIT_UNKNOWN), 1.1)
    assert isinstance(report, Report) and f"subscription {bad} to /bogus/x" in report.message
    assert stomp.subscriptions == {good: "/queue/ok"} and bad_receipt.startswith(bad)
    stomp.closed()
    stomp.start(2.0)
    resent = [
        parse_one(a.payload).headers["destination"] for a in stomp.receive(CONNECTED.format("0,0"), 2.1) if isinstance(a, Send)
    ]
    assert resent == ["/queue/ok"]


def test_resubscriptions_are_awaited_before_sends_that_waited_in_the_outbox():
    stomp = connected()
    stomp.subscribe("/queue/ok")
    stomp.closed()
    stomp.start(1.0)
    queued, _ = stomp.publish_with_receipt("/queue/other", "x")  # written after the re-SUBSCRIBE
    stomp.receive(CONNECTED.format("0,0"), 1.1)
    (report,) = stomp.receive(frame("ERROR", {"message": "Unknown destination"}, "'/queue/ok' is gone"), 1.2)
    assert "subscription sub-1 to /queue/ok" in report.message and stomp.subscriptions == {}
    stomp.cancel_call(queued)
    (report,) = stomp.receive(frame("ERROR", {"message": "x"}), 1.3)
    assert report.message == "ERROR from the broker: x"


# --- heart-beats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, server, send_every, expect_every",
    [
        ((10000, 10000), "5000,5000", 10.0, 10.0),
        ((1000, 2000), "5000,500", 1.0, 5.0),
        ((0, 10000), "5000,5000", None, 10.0),  # we cannot send
        ((10000, 10000), "0,0", None, None),  # server neither sends nor wants
        ((0, 0), "5000,5000", None, None),
    ],
)
def test_heartbeat_negotiation(ours, server, send_every, expect_every):
    stomp = connected(server, heartbeat=ours)
    ready_info = (int((send_every or 0) * 1000), int((expect_every or 0) * 1000))
    stomp2 = STOMP(heartbeat=ours)
    stomp2.start(0.0)
    assert stomp2.receive(CONNECTED.format(server), 0.0)[-1].info["heart-beat"] == ready_info
    deadlines = [d for d in (send_every, expect_every and expect_every * 2) if d]
    assert stomp.next_deadline() == (min(deadlines) if deadlines else None)


def test_heartbeat_timer_sends_eol_and_closes_on_silence():
    stomp = connected("1000,1000", heartbeat=(1000, 1000))
    assert stomp.next_deadline() == 1.0
    assert stomp.poll(0.5) == []
    assert stomp.poll(1.0) == [Send("\n")]
    assert stomp.next_deadline() == 2.0  # next send; the server is expected by 0 + 2 * 1.0 too
    assert stomp.receive("\n", 1.9) == [Housekeeping("heart-beat")]
    assert stomp.poll(2.0) == [Send("\n")]
    assert stomp.next_deadline() == 3.0
    assert stomp.poll(3.0) == [Send("\n")]
    (close,) = stomp.poll(4.0)  # 2.1 s of silence > 2 * 1 s
    assert isinstance(close, Close) and "heart-beat" in close.reason
    assert stomp.next_deadline() is None


def test_any_frame_counts_as_server_activity():
    stomp = connected("1000,0", heartbeat=(0, 1000))
    stomp.receive(frame("RECEIPT", {"receipt-id": "x"}), 1.5)
    assert stomp.poll(3.0) == []
    assert isinstance(stomp.poll(3.6)[0], Close)


def test_no_timers_before_connected_or_after_close():
    stomp = STOMP()
    stomp.start(0.0)
    assert stomp.next_deadline() is None
    stomp.receive(CONNECTED.format("1000,1000"), 0.0)
    assert stomp.next_deadline() is not None
    stomp.closed()
    assert stomp.next_deadline() is None and not stomp.ready


# --- subscriptions -----------------------------------------------------------------------------


def test_subscribe_and_unsubscribe_frames():
    stomp = connected()
    sub_id, topic, (wire,) = stomp.subscribe("/topic/prices", headers={"x-priority": 1})
    assert topic == "/topic/prices"
    parsed = parse_one(wire)
    assert parsed.command == "SUBSCRIBE"
    assert parsed.headers == {
        "x-priority": "1",
        "id": sub_id,
        "destination": "/topic/prices",
        "ack": "auto",
        "receipt": f"{sub_id}@1",
    }
    assert stomp.subscriptions == {sub_id: "/topic/prices"}
    (wire,) = stomp.unsubscribe(sub_id)
    assert parse_one(wire) == StompFrame("UNSUBSCRIBE", {"id": sub_id})
    assert stomp.subscriptions == {} and stomp.unsubscribe(sub_id) == []


def test_subscriptions_before_connected_go_out_once_on_connected():
    stomp = STOMP()
    stomp.start(0.0)
    first, _, early = stomp.subscribe("/queue/a")
    assert early == []
    actions = stomp.receive(CONNECTED.format("0,0"), 0.1)
    assert [parse_one(a.payload).headers["id"] for a in actions[:-1]] == [first]
    assert isinstance(actions[-1], Ready)


def test_reconnect_resubscribes_in_order_before_ready():
    stomp = connected(ack="client")
    ids = [stomp.subscribe(dest)[0] for dest in ("/queue/a", "/topic/b", "/queue/c")]
    stomp.unsubscribe(ids[1])
    stomp.closed()
    (connect,) = stomp.start(10.0)
    assert parse_one(connect).command == "CONNECT" and not stomp.ready
    actions = stomp.receive(CONNECTED.format("0,0"), 10.1)
    assert all(isinstance(a, Send) for a in actions[:-1]) and isinstance(actions[-1], Ready)
    resent = [parse_one(a.payload).headers for a in actions[:-1]]
    assert [(h["id"], h["destination"], h["ack"]) for h in resent] == [
        (ids[0], "/queue/a", "client"),
        (ids[2], "/queue/c", "client"),
    ]


def test_bad_subscribe_arguments():
    stomp = connected()
    with pytest.raises(ProtocolError):
        stomp.subscribe("")
    with pytest.raises(ProtocolError):
        stomp.subscribe("/q", ack="never")


# --- messages ----------------------------------------------------------------------------------


def message(sub_id: str, body: bytes | str, content_type: str | None = None, **extra: str) -> bytes:
    headers = {"destination": "/topic/t", "subscription": sub_id, "message-id": "m-1", **extra}
    if content_type:
        headers["content-type"] = content_type
    return frame("MESSAGE", headers, body)


@pytest.mark.parametrize(
    "content_type, body, data, error",
    [
        ("application/json", b'{"p": 1}', {"p": 1}, None),
        ("application/vnd.x+json;charset=utf-8", b"[1,2]", [1, 2], None),
        ("text/plain", "héllo".encode(), "héllo", None),
        ("text/plain;charset=latin-1", "héllo".encode("latin-1"), "héllo", None),
        ("application/octet-stream", b"\x00\xff", b"\x00\xff", None),
        (None, b"raw", b"raw", None),
        ("application/json", b"{nope", None, "JSON"),
        ("text/plain", b"\xff\xfe\xfa", None, "utf-8"),
        ("text/plain;charset=nonesuch", b"x", None, "nonesuch"),
    ],
)
def test_message_body_decoded_by_content_type(content_type, body, data, error):
    stomp = connected()
    sub_id, _, _ = stomp.subscribe("/topic/t")
    (deliver,) = stomp.receive(message(sub_id, body, content_type), 1.0)
    assert isinstance(deliver, Deliver)
    assert deliver.topic == "/topic/t" and deliver.data == data and deliver.ack is None
    assert (deliver.error is None) if error is None else (error in deliver.error)
    assert deliver.headers["message-id"] == "m-1"


def test_decode_body_helper_without_content_type_keeps_bytes():
    assert decode_body(b"x", None) == (b"x", None)


def test_messages_in_one_websocket_message_all_delivered():
    stomp = connected()
    sub_id, _, _ = stomp.subscribe("/topic/t")
    wire = b"".join(message(sub_id, json.dumps({"n": n}), "application/json") + b"\n" for n in range(3))
    actions = stomp.receive(wire, 1.0)
    assert [a.data["n"] for a in actions if isinstance(a, Deliver)] == [0, 1, 2]


# --- publishing and receipts -------------------------------------------------------------------


def test_publish_encodes_bodies_by_type():
    stomp = connected()
    (as_json,) = stomp.publish("/topic/t", {"p": 1}, headers={"persistent": "true"})
    assert isinstance(as_json, str)
    parsed = parse_one(as_json)
    assert parsed.command == "SEND" and json.loads(parsed.body) == {"p": 1}
    assert parsed.headers["content-type"] == "application/json" and parsed.headers["persistent"] == "true"
    assert parsed.headers["destination"] == "/topic/t" and "receipt" not in parsed.headers
    (as_text,) = stomp.publish("/topic/t", "hi\x00there")
    assert isinstance(as_text, str)
    assert parse_one(as_text).body == b"hi\x00there" and parse_one(as_text).headers["content-type"].startswith("text/plain")
    (as_binary,) = stomp.publish("/topic/t", b"\x00\xff", content_type="image/png")
    assert isinstance(as_binary, bytes)
    assert parse_one(as_binary).body == b"\x00\xff" and parse_one(as_binary).headers["content-type"] == "image/png"
    with pytest.raises(ProtocolError):
        stomp.publish("/topic/t", object())
    with pytest.raises(ProtocolError):
        stomp.publish("", "x")


def test_publish_with_receipt_and_its_reply():
    stomp = connected()
    receipt_id, (wire,) = stomp.publish_with_receipt("/queue/q", "hello")
    assert parse_one(wire).headers["receipt"] == receipt_id
    other_id, _ = stomp.call("/queue/q", "again")
    assert other_id != receipt_id
    (reply,) = stomp.receive(frame("RECEIPT", {"receipt-id": receipt_id}), 1.0)
    assert reply == Reply(receipt_id, value={"receipt-id": receipt_id})


# --- acknowledgements --------------------------------------------------------------------------


def test_client_ack_mode_gives_tokens_and_ack_nack_frames():
    stomp = connected()
    sub_id, _, (wire,) = stomp.subscribe("/queue/work", ack="client-individual")
    assert parse_one(wire).headers["ack"] == "client-individual"
    (deliver,) = stomp.receive(message(sub_id, b"job", ack="ack-42"), 1.0)
    assert isinstance(deliver.ack, StompAck) and deliver.ack.ack_id == "ack-42"
    (ack,) = stomp.acknowledge(deliver.ack)
    assert parse_one(ack) == StompFrame("ACK", {"id": "ack-42"})
    (nack,) = stomp.acknowledge(deliver.ack, positive=False)
    assert parse_one(nack) == StompFrame("NACK", {"id": "ack-42"})


def test_ack_option_is_the_default_mode():
    stomp = connected(ack="client")
    sub_id, _, (wire,) = stomp.subscribe("/queue/work")
    assert parse_one(wire).headers["ack"] == "client"
    (deliver,) = stomp.receive(message(sub_id, b"x", ack="a1"), 1.0)
    assert deliver.ack is not None


def test_stomp_11_acks_by_message_id_and_subscription():
    stomp = STOMP()
    stomp.start(0.0)
    stomp.receive("CONNECTED\nversion:1.1\n\n\x00", 0.0)
    sub_id, _, _ = stomp.subscribe("/queue/q", ack="client")
    (deliver,) = stomp.receive(message(sub_id, b"x"), 1.0)
    (ack,) = stomp.acknowledge(deliver.ack)
    assert parse_one(ack).headers == {"message-id": "m-1", "subscription": sub_id}


def test_tokens_from_an_earlier_connection_are_refused():
    stomp = connected()
    sub_id, _, _ = stomp.subscribe("/queue/q", ack="client")
    (deliver,) = stomp.receive(message(sub_id, b"x", ack="a1"), 1.0)
    stomp.closed()
    stomp.start(2.0)
    stomp.receive(CONNECTED.format("0,0"), 2.0)
    with pytest.raises(ProtocolError, match="earlier connection"):
        stomp.acknowledge(deliver.ack)
    with pytest.raises(ProtocolError):
        stomp.acknowledge("a1")


def test_unsupported_verbs_raise_protocol_error():
    with pytest.raises(ProtocolError):
        connected().emit("x")
