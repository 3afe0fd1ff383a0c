"""A real ``tensorboard`` server over a log directory, and its HParams plugin's HTTP API (what the tab shows)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS"]


def post(port: int, route: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/{route}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def hparams_tab(logdir: str | Path, metric_values: int) -> tuple[dict, dict]:
    """(the tab's experiment, its session groups) once the server shows ``metric_values`` metric values in all."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("tensorboard")), "--logdir", str(logdir), "--port",
                               str(port), "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    groups = {}
    try:
        for _ in range(120):  # the server loads the event files in the background
            try:
                groups = post(port, "session_groups", {"experimentName": "", "startIndex": 0, "sliceSize": 100,
                                                       "allowedStatuses": STATUSES})
                if sum(len(g["metricValues"]) for g in groups.get("sessionGroups", [])) == metric_values:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        experiment = post(port, "experiment", {"experimentName": ""})
    finally:
        server.terminate()
        server.wait(10)
    return experiment, groups
