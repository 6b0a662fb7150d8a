"""Hypothesis settings and strategies shared by the protocol property tests (JSON-RPC, GraphQL, STOMP).

The suite runs a fixed, derandomized set of examples (``PROPERTY``), so a run is repeatable and takes
seconds; ``NBSOCKET_FUZZ_EXAMPLES`` sets more examples and ``NBSOCKET_FUZZ_RANDOM=1`` draws new ones
(``python benchmarks/fuzz.py jsonrpc graphql stomp`` does both).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from nbsocket.core.protocols.base import (
    Close,
    Deliver,
    Housekeeping,
    Malformed,
    Ready,
    Refused,
    Reply,
    Report,
    Send,
)

__all__ = ["ACTION_TYPES", "EXAMPLES", "PROPERTY", "json_objects", "json_values", "names", "never_raises"]

EXAMPLES = int(os.environ.get("NBSOCKET_FUZZ_EXAMPLES", "100"))
"""Examples per property (100 in the suite)."""

PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=not os.environ.get("NBSOCKET_FUZZ_RANDOM"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
"""The settings of every protocol property test: a fixed, derandomized set unless ``NBSOCKET_FUZZ_RANDOM`` is set."""

ACTION_TYPES = (Send, Deliver, Reply, Ready, Refused, Close, Malformed, Report, Housekeeping)

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
"""Non-empty names (methods, events, destinations): any Unicode, NUL and line breaks included."""

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)

json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
"""Any JSON value (finite numbers: JSON has no NaN)."""

json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
"""Any JSON object."""


def never_raises(actions: Any) -> list[Any]:
    """Check that what ``receive`` returned is a list of actions, each ``Malformed`` with a reason; return it."""
    assert isinstance(actions, list), actions
    for action in actions:
        assert isinstance(action, ACTION_TYPES), action
        if isinstance(action, Malformed):
            assert action.error, action
    return actions
