"""Holds a child at a chosen moment, for tests/test_signals.py (on PYTHONPATH there only).

``LANDSCAPE_TEST_HOLD=import``: before torch is first imported (a command still loading,
before its own handlers exist); ``=exit``: in the interpreter's teardown, after the
command's result. Prints ``HELD <where>`` on stdout, then waits until the file
``LANDSCAPE_TEST_GO`` exists: the test signals the child while it is surely there.
"""

import atexit
import os
import sys
import time

_WHERE = os.environ.get("LANDSCAPE_TEST_HOLD")
_GO = os.environ.get("LANDSCAPE_TEST_GO", "")


def _hold(where: str) -> None:
    print(f"HELD {where}", flush=True)
    while not os.path.exists(_GO):
        time.sleep(0.01)


class _BeforeTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            _hold("import")
        return None


if _WHERE == "import":
    sys.meta_path.insert(0, _BeforeTorch())
elif _WHERE == "exit":
    atexit.register(_hold, "exit")
