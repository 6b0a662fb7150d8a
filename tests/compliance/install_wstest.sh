#!/usr/bin/env bash
# Installs Autobahn|Testsuite's wstest, which runs on Python 2.7 only, into tests/compliance/.wstest/:
# a Python 2.7 virtualenv (py2/) with the pinned set in wstest-requirements.txt. The compliance tests
# find it there by themselves (or through NBSOCKET_WSTEST). No docker is needed; it takes about 30 s.
#
#   bash tests/compliance/install_wstest.sh [PYTHON2.7]
#
# Without an argument, Python 2.7 is $PYTHON2, else pyenv's 2.7.18 (or any 2.7, pyenv on PATH or not), else python2.7 on PATH.
# A C compiler is needed (wsaccel, ujson and Twisted build from source); cryptography comes as a wheel.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target="$here/.wstest"

find_python2() {
    local prefix candidate
    if [ -n "${PYTHON2:-}" ]; then
        echo "$PYTHON2"
        return 0
    fi
    if command -v pyenv >/dev/null 2>&1; then
        for version in 2.7.18 2.7; do
            if prefix=$(pyenv prefix "$version" 2>/dev/null) && [ -x "$prefix/bin/python" ]; then
                echo "$prefix/bin/python"
                return 0
            fi
        done
    fi
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python; do  # pyenv's, when pyenv is not on PATH
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    for candidate in python2.7 python2; do
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

python2=${1:-}
if [ -z "$python2" ] && ! python2=$(find_python2); then
    echo "install_wstest.sh: no Python 2.7 found (pass its path, set PYTHON2, or install 2.7.18 with pyenv)" >&2
    exit 1
fi
if ! "$python2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))'; then
    echo "install_wstest.sh: $python2 is not Python 2.7" >&2
    exit 1
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1
rm -rf "$target"
# virtualenv 20.15.1 is the last that runs on Python 2.7; it goes into a folder of its own, so the
# Python 2.7 installation is left as it was.
"$python2" -m pip install -qq --target "$target/bootstrap" 'virtualenv==20.15.1'
PYTHONPATH="$target/bootstrap" VIRTUALENV_OVERRIDE_APP_DATA="$target/app-data" \
    "$python2" -m virtualenv -q --no-periodic-update "$target/py2"
py2="$target/py2/bin/python"
"$py2" -m pip install -qq 'setuptools==44.0.0' 'wheel==0.36.2' 'incremental==16.10.1'
"$py2" -m pip install -qq --no-build-isolation -r "$here/wstest-requirements.txt"
"$target/py2/bin/wstest" --autobahnversion
echo "wstest: $target/py2/bin/wstest"
