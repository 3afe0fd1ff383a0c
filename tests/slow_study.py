"""A study of the one shape whose jobs take a while, for the runner's interruption test: each job notes its
start in STARTS before it works."""

import os
import time
from pathlib import Path

from matplotlib.figure import Figure

NAME = "slow_study"
JOBS = 6


def jobs(quick: bool, out: Path) -> list[dict]:
    return [{"x": x, "seconds": 0.4} for x in range(2 if quick else JOBS)]


def run(job: dict) -> dict:
    with open(Path(os.environ["STARTS"]), "a") as starts:
        starts.write(f"{job['x']}\n")
    time.sleep(job["seconds"])
    return {"square": job["x"] ** 2}


def report(records: list[dict]) -> tuple[Figure, str]:
    fig = Figure()
    fig.subplots().plot([r["x"] for r in records], [r["square"] for r in records])
    return fig, "| x | square |\n|---|---|\n" + "\n".join(f"| {r['x']} | {r['square']} |" for r in records)
