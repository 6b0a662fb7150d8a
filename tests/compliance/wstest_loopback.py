"""Runs Autobahn|Testsuite's ``wstest`` with its WebSocket servers listening on 127.0.0.1 only.

wstest itself listens on every interface. This file is run by wstest's own Python 2.7 interpreter
(``fuzzingserver.py`` starts it), with wstest's arguments::

    python2.7 wstest_loopback.py --mode fuzzingserver --spec spec.json --webport 0

It is written so that Python 2.7 and 3 both parse it.
"""

import sys

from autobahn.twisted import websocket
from autobahntestsuite import fuzzing, wstest

__all__ = ["listen_on_loopback"]

_listen_ws = websocket.listenWS


def listen_on_loopback(factory, contextFactory=None, backlog=50, interface=""):
    """Autobahn's ``listenWS``, bound to 127.0.0.1 whatever ``interface`` says."""
    return _listen_ws(factory, contextFactory, backlog, "127.0.0.1")


if __name__ == "__main__":
    fuzzing.listenWS = listen_on_loopback
    sys.argv[0] = "wstest"
    sys.exit(wstest.run())
