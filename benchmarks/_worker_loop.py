"""The persistent worker processes of ``bench_vs_openvino_xai.py``: one JSON request per line on stdin,
one JSON answer per line on stdout. Standard library only (the openvino_xai worker runs in its own
environment). Whatever a library prints goes to stderr, so stdout carries nothing but answers.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

Case = Callable[[dict[str, Any]], dict[str, Any]]


def serve(cases: dict[str, Case]) -> None:
    """Answer requests ``{"case": name, ...}`` with ``cases[name](request)`` plus its wall time, until EOF
    or ``{"case": "quit"}``."""
    answers = sys.stdout
    sys.stdout = sys.stderr
    answers.write(json.dumps({"ready": sorted(cases)}) + "\n")
    answers.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request["case"] == "quit":
            break
        start = time.perf_counter()
        answer = cases[request["case"]](request)
        answer.setdefault("seconds", time.perf_counter() - start)
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
