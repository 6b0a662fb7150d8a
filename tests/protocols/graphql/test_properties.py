"""Properties of both GraphQL codecs on generated messages, checked against graphql-ws's own ``validateMessage``.

* what the verbs produce parses back to what was asked, and graphql-ws accepts every message of
  graphql-transport-ws nbsocket sends (``connection_init``, ``subscribe``, ``complete``, ``ping``, ``pong``);
* generated server messages (``next`` with data and errors, ``error``, ``complete``, for subscriptions and
  calls) become the right actions, for both subprotocols;
* any JSON (and any text) becomes actions without an exception; for graphql-transport-ws, a message is
  ``Malformed`` exactly when graphql-ws's ``validateMessage`` refuses it, apart from the messages only a
  client sends (:data:`CLIENT_ONLY`).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nbsocket.core.protocols.base import Deliver, Housekeeping, Malformed, Ready, Reply, Report, Send
from nbsocket.core.protocols.graphql import GraphQLWS, errors_text
from nbsocket.core.protocols.graphql_legacy import GraphQLWSLegacy

from ...protocol_servers.node_servers import NodeOracle, node_oracle  # noqa: F401  (a fixture)
from ..strategies import PROPERTY, json_objects, json_values, names, never_raises

CLIENT_ONLY = frozenset({"connection_init", "subscribe"})
"""Valid graphql-transport-ws messages that only a client sends: a client receiving one reports it as Malformed."""

queries = st.text(min_size=1, max_size=40).filter(str.strip)
graphql_errors = st.lists(
    st.fixed_dictionaries(
        {"message": st.text(max_size=20)},
        optional={"path": st.lists(st.text(max_size=5) | st.integers(0, 9), max_size=3), "extensions": json_objects},
    ),
    min_size=1,
    max_size=3,
)
results = st.fixed_dictionaries(
    {}, optional={"data": st.none() | json_objects, "errors": graphql_errors, "extensions": json_objects}
)
protocols = st.sampled_from([GraphQLWS, GraphQLWSLegacy])


def ready(cls: type[GraphQLWS]) -> GraphQLWS:
    proto = cls()
    proto.start(0)
    assert proto.receive(json.dumps({"type": "connection_ack"}), 0) == [Ready(info={})]
    return proto


@PROPERTY
@given(query=queries, variables=st.none() | json_objects, operation=st.none() | names, payload=st.none() | json_objects)
def test_what_the_client_sends_parses_back_and_graphql_ws_accepts_it(
    node_oracle: NodeOracle, query: str, variables: Any, operation: Any, payload: Any
) -> None:
    proto = GraphQLWS(init_payload=payload)
    [init] = proto.start(0)
    assert json.loads(init) == (
        {"type": "connection_init", "payload": payload} if payload is not None else {"type": "connection_init"}
    )
    proto.receive(json.dumps({"type": "connection_ack"}), 0)
    sub_id, _, [subscribe] = proto.subscribe(query, variables, operation)
    call_id, [call] = proto.call(query, variables, operation)
    expected = {
        "query": query,
        **({"variables": variables} if variables is not None else {}),
        **({"operationName": operation} if operation is not None else {}),
    }
    assert json.loads(subscribe) == {"id": sub_id, "type": "subscribe", "payload": expected}
    assert json.loads(call) == {"id": call_id, "type": "subscribe", "payload": expected} and sub_id != call_id
    [complete] = proto.unsubscribe(sub_id)
    assert json.loads(complete) == {"id": sub_id, "type": "complete"}
    [pong] = [a.payload for a in proto.receive(json.dumps({"type": "ping"}), 1) if isinstance(a, Send)]
    for text in (init, subscribe, call, complete, pong):
        assert node_oracle.graphql(text)["valid"], text


@PROPERTY
@given(cls=protocols, query=queries, variables=st.none() | json_objects)
def test_legacy_and_current_verbs_differ_only_in_message_types(cls: type[GraphQLWS], query: str, variables: Any) -> None:
    proto = ready(cls)
    sub_id, topic, [start] = proto.subscribe(query, variables)
    assert topic == sub_id and json.loads(start)["type"] == ("start" if cls is GraphQLWSLegacy else "subscribe")
    assert json.loads(proto.unsubscribe(sub_id)[0]) == {"id": sub_id, "type": "stop" if cls is GraphQLWSLegacy else "complete"}


@PROPERTY
@given(cls=protocols, data=st.data())
def test_generated_server_messages_become_the_right_actions(cls: type[GraphQLWS], data: st.DataObject) -> None:
    proto = ready(cls)
    result_type = "data" if cls is GraphQLWSLegacy else "next"
    sub_id, _, _ = proto.subscribe("subscription { s }")
    call_id, _ = proto.call("query { q }")
    for result in data.draw(st.lists(results, max_size=4)):
        [action] = never_raises(proto.receive(json.dumps({"id": sub_id, "type": result_type, "payload": result}), 1))
        errors = result.get("errors")
        assert action == Deliver(
            topic=sub_id,
            data=result.get("data"),
            error=errors_text(errors) if errors else None,
            headers={"extensions": result["extensions"]} if result.get("extensions") else None,
        )
    first = data.draw(st.none() | results)
    if first is not None:
        [kept] = proto.receive(json.dumps({"id": call_id, "type": result_type, "payload": first}), 2)
        assert isinstance(kept, Housekeeping)
    ending = data.draw(st.sampled_from(["complete", "error"]))
    errors = data.draw(graphql_errors)
    message = {"id": call_id, "type": ending, **({"payload": errors} if ending == "error" else {})}
    [reply] = never_raises(proto.receive(json.dumps(message), 3))
    assert isinstance(reply, Reply) and reply.id == call_id and proto.pending_calls() == []
    if ending == "error":
        assert reply.error is not None and reply.error["message"] == errors_text(errors)
    elif first is not None and first.get("errors"):
        assert reply.error is not None and reply.error["data"] == {"errors": first["errors"], "data": first.get("data")}
    else:
        assert reply == Reply(call_id, value=(first or {}).get("data"))
    [ended] = never_raises(proto.receive(json.dumps({"id": sub_id, "type": "complete"}), 4))
    assert isinstance(ended, Housekeeping) and not proto.is_active(sub_id)
    [late] = proto.receive(json.dumps({"id": sub_id, "type": result_type, "payload": {"data": {}}}), 5)
    assert isinstance(late, Report) and late.error == "UnknownReply"


message_types = (
    st.sampled_from(
        ["connection_ack", "ping", "pong", "next", "error", "complete", "connection_init", "subscribe", "ka", "data", "", "NEXT"]
    )
    | st.text(max_size=6)
    | st.integers()
)
payloads = json_values | graphql_errors | results | st.lists(st.integers() | st.none(), min_size=1, max_size=2)
ids = st.sampled_from(["1", "2", "99"]) | st.text(max_size=4) | st.integers(0, 3) | st.none()
messages = st.fixed_dictionaries({}, optional={"type": message_types, "id": ids, "payload": payloads})


@PROPERTY
@given(message=messages, acknowledged=st.booleans())
def test_a_message_is_malformed_exactly_when_graphql_ws_refuses_it(
    node_oracle: NodeOracle, message: dict[str, Any], acknowledged: bool
) -> None:
    proto = GraphQLWS()
    proto.start(0)
    if acknowledged:
        proto.receive(json.dumps({"type": "connection_ack"}), 0)
        proto.subscribe("subscription { s }")  # id "1"
        proto.call("query { q }")  # id "2"
    text = json.dumps(message)
    verdict = node_oracle.graphql(text)
    actions = never_raises(proto.receive(text, 1))
    malformed = [a for a in actions if isinstance(a, Malformed)]
    if verdict["valid"] and verdict["type"] in CLIENT_ONLY:
        assert malformed and "unknown message type" in malformed[0].error
    elif verdict["valid"]:
        assert not malformed, f"{text}: graphql-ws accepts it, nbsocket says {malformed[0].error}"
    else:
        assert malformed, f"{text}: graphql-ws refuses it ({verdict['reason']}), nbsocket made {actions}"


@PROPERTY
@given(cls=protocols, body=st.text(max_size=60) | st.binary(max_size=60) | json_values.map(json.dumps))
def test_any_text_or_bytes_become_actions_without_an_exception(cls: type[GraphQLWS], body: str | bytes) -> None:
    proto = ready(cls)
    proto.subscribe("subscription { s }")
    never_raises(proto.receive(body, 1))
