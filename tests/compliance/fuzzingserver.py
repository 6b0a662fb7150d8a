"""Autobahn|Testsuite's fuzzing server (``wstest --mode fuzzingserver``) as a subprocess on 127.0.0.1.

wstest runs on Python 2.7 only. ``install_wstest.sh`` puts it in ``tests/compliance/.wstest/``; the
``NBSOCKET_WSTEST`` environment variable or ``PATH`` can name another one. The server is started
through ``wstest_loopback.py`` by wstest's own interpreter, so it listens on 127.0.0.1 only, on a
free port, and it is stopped by killing its process group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CONFIG",
    "INSTALL_HINT",
    "REQUIRE_ENV",
    "WSTEST_ENV",
    "FuzzingServer",
    "WstestMissingError",
    "find_wstest",
    "load_config",
]

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "fuzzingserver.json"
"""The fuzzing server's spec without its URL and report folder, which each run fills in."""
WSTEST_ENV = "NBSOCKET_WSTEST"
"""Names the ``wstest`` executable to use."""
REQUIRE_ENV = "NBSOCKET_REQUIRE_WSTEST"
"""When ``1``, a missing wstest fails the compliance tests instead of skipping them (CI sets it)."""
INSTALLED_WSTEST = HERE / ".wstest" / "py2" / "bin" / "wstest"
LOOPBACK_LAUNCHER = HERE / "wstest_loopback.py"
INSTALL_HINT = (
    "Autobahn|Testsuite's wstest (Python 2.7 only) is needed: run `bash tests/compliance/install_wstest.sh` "
    "(it makes a Python 2.7 virtualenv in tests/compliance/.wstest/ from pyenv's 2.7.18, or the Python 2.7 "
    f"given as its argument), or set {WSTEST_ENV} to a wstest executable."
)
START_TIMEOUT = 30.0


class WstestMissingError(RuntimeError):
    """No usable wstest was found."""


def find_wstest() -> Path:
    """The wstest to run: ``$NBSOCKET_WSTEST``, else the one ``install_wstest.sh`` made, else ``wstest`` on PATH."""
    named = os.environ.get(WSTEST_ENV)
    if named:
        path = Path(named).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise WstestMissingError(f"{WSTEST_ENV}={named} is not an executable file. {INSTALL_HINT}")
        return path
    if INSTALLED_WSTEST.is_file():
        return INSTALLED_WSTEST
    on_path = shutil.which("wstest")
    if on_path:
        return Path(on_path)
    raise WstestMissingError(f"wstest was not found ({WSTEST_ENV} is not set, nothing on PATH). {INSTALL_HINT}")


def wstest_interpreter(wstest: Path) -> str:
    """The Python 2.7 that runs ``wstest``: the one its ``#!`` line names, else ``python`` beside it."""
    with open(wstest, "rb") as script:
        first_line = script.readline(1024)
    if first_line.startswith(b"#!"):
        words = first_line[2:].decode(errors="replace").split()
        if words and Path(words[0]).name != "env":
            return words[0]
        if len(words) > 1:
            return shutil.which(words[1]) or words[1]
    return str(wstest.parent / "python")


def load_config() -> dict:
    """The committed spec (cases selected for CI, excluded cases)."""
    return json.loads(CONFIG.read_text(encoding="utf-8"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FuzzingServer:
    """One wstest fuzzing server: ``start()`` returns once it listens; ``stop()`` kills its process group.

    ``cases`` and ``exclude`` are Autobahn case patterns (``"1.*"``, ``"12.1.*"``); the reports go to
    ``report_dir/clients/``, the server's output to ``report_dir/wstest.log``.
    """

    def __init__(self, wstest: Path, report_dir: Path, cases: Sequence[str] = ("*",), exclude: Sequence[str] = ()) -> None:
        self.wstest = wstest
        self.report_dir = report_dir
        self.cases = list(cases)
        self.exclude = list(exclude)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.report_dir / "wstest.log"

    @property
    def clients_dir(self) -> Path:
        return self.report_dir / "clients"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> Self:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # the free port may be taken between the probe and wstest's listen
            self.port = _free_port()
            if self._start_once():
                return self
        raise RuntimeError(f"wstest's fuzzing server did not start:\n{self.log_tail()}")

    def _start_once(self) -> bool:
        spec = {
            "url": self.url,
            "outdir": str(self.clients_dir),
            "cases": self.cases,
            "exclude-cases": self.exclude,
            "exclude-agent-cases": {},
        }
        spec_path = self.report_dir / "fuzzingserver-spec.json"
        spec_path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        command = [
            wstest_interpreter(self.wstest),
            "-u",
            str(LOOPBACK_LAUNCHER),
            "--mode",
            "fuzzingserver",
            "--spec",
            str(spec_path),
            "--webport",
            "0",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.report_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"wstest's fuzzing server did not listen on {self.url} within {START_TIMEOUT:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
