"""The runtime: the loop thread and everything that runs on it or talks to it.

This package's own namespace is its public surface: the front ends (the API, magics, widgets, the
explorers, the demo and the command line) import from here and from nowhere else in the runtime
(``tests/test_structure.py`` checks it). Inside, the runtime is grouped by concept:

* ``transport/``: how a socket opens (the one door to ``websockets``, and the scripted test transport);
* ``session`` and ``receivers``: one socket's lifecycle, and what its messages mean (plain or protocol);
* ``dispatch/``: handlers and callbacks, in order, off the loop;
* ``outbound/``: the outbox, the writer and paced sending;
* ``observe/``: observers, the transcript, waits, requests, latency, the error log and recording;
* ``protocols/``: protocol sockets and their driver;
* ``connection`` (the facade that composes one socket's parts, ``parts``) and ``manager`` (the registry);
  ``loop`` (the background loop thread) and ``progress`` (progress bars for long sends and waits).
"""

from __future__ import annotations

from ..core.state import ErrorRecord
from .connection import Connection
from .dispatch.lockable import Lockable
from .elsewhere import HeldElsewhere
from .manager import Manager, registry
from .observe.recording import process_run, stop_stream_publishers
from .observe.requests import Reply
from .observe.transcript import TranscriptRecorder, write_transcript_file
from .outbound.pacing import POLL_SECONDS, Burst, BurstReport, Sending, paced, run_async, run_sync
from .progress import ProgressBar, frontend_present
from .protocols.connection import ProtocolConnection, Subscription
from .transport import ScriptedPeer, ScriptedTransport, Transport

__all__ = [
    "POLL_SECONDS",
    "Burst",
    "BurstReport",
    "Connection",
    "ErrorRecord",
    "HeldElsewhere",
    "Lockable",
    "Manager",
    "ProgressBar",
    "ProtocolConnection",
    "Reply",
    "ScriptedPeer",
    "ScriptedTransport",
    "Sending",
    "Subscription",
    "TranscriptRecorder",
    "Transport",
    "frontend_present",
    "paced",
    "process_run",
    "registry",
    "run_async",
    "run_sync",
    "stop_stream_publishers",
    "write_transcript_file",
]
