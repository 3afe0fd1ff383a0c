"""Resumable sweeps: every job's result appended to a JSON-lines log as it finishes, finished jobs never redone.

A job is a dict of JSON values (its settings); ``run(job)`` returns a record (a dict holding the job's settings
and its results). The log is keyed on the settings named by ``key``: a restarted sweep reads the records of the
jobs it already finished and runs only the others, and a sweep with other settings runs its own jobs. The
returned records are in the order of ``jobs`` whatever order they finished in, so a parallel sweep gives the same
tables as a sequential one.

Parallel jobs (``workers`` > 1) are separate processes (``concurrent.futures`` with the ``spawn`` start method):
with GPUs, worker i sees GPU i mod (number of GPUs) alone (``CUDA_VISIBLE_DEVICES``); on the CPU the cores are
shared out, each worker taking ⌊cores / workers⌋ threads. ``run`` must then be a module-level function.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm


def job_key(record: dict, key: Sequence[str]) -> str:
    """The settings that identify a job, as one string (JSON, so lists and floats compare exactly)."""
    return json.dumps([record[k] for k in key])


def read_log(log_path: Path, key: Sequence[str]) -> dict[str, dict]:
    """The records in a sweep log, by ``job_key``; a last line cut short by a kill is ignored.

    Raises:
        ValueError: a record lacks one of the ``key`` settings (the log was written by another kind of sweep).
    """
    done = {}
    if log_path.exists():
        for number, line in enumerate(log_path.read_text().splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            missing = [k for k in key if k not in record]
            if missing:
                raise ValueError(f"sweep log {log_path}, line {number}: no {missing} settings; it was written by "
                                 "another sweep (use another --out)")
            done[job_key(record, key)] = record
    return done


def default_workers() -> int:
    """One worker per GPU when there are several, else 1."""
    return max(1, torch.cuda.device_count())


def _init_worker(slots, gpus: int, threads: int) -> None:
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    else:
        torch.set_num_threads(threads)


def tasks_of(todo: list[dict], group: Callable[[dict], str] | None) -> list[list[dict]]:
    """The jobs as tasks: one job each, or (``group``) the jobs of one group key together, in first-seen order."""
    if group is None:
        return [[job] for job in todo]
    tasks: dict[str, list[dict]] = {}
    for job in todo:
        tasks.setdefault(group(job), []).append(job)
    return list(tasks.values())


def _run_task(run: Callable[[dict], dict], run_group: Callable[[list[dict]], list[dict]] | None,
              task: list[dict]) -> list[dict]:
    return run_group(task) if run_group is not None else [run(job) for job in task]


def run_sweep(jobs: list[dict], run: Callable[[dict], dict], log_path: str | Path, key: Sequence[str],
              workers: int = 1, desc: str = "sweep", progress: bool = True,
              group: Callable[[dict], str] | None = None,
              run_group: Callable[[list[dict]], list[dict]] | None = None) -> list[dict]:
    """Run every job not already in ``log_path``; the records of all ``jobs``, in their order.

    With ``group`` and ``run_group``, the jobs not done yet that share a group key run together as one task,
    ``run_group(jobs)`` returning their records in order (an ensemble of networks); otherwise ``run(job)`` each.

    Raises:
        ValueError: ``workers`` < 1, or a job lacks a ``key`` setting.
    """
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    missing = [k for k in key if jobs and k not in jobs[0]]
    if missing:
        raise ValueError(f"sweep jobs lack the key settings {missing}")
    done = read_log(log_path, key)
    todo = [job for job in jobs if job_key(job, key) not in done]
    bar = tqdm(total=len(todo), desc=f"{desc} ({len(jobs) - len(todo)} of {len(jobs)} already done)",
               disable=not progress)
    with open(log_path, "a") as log:
        if log.tell() and not log_path.read_bytes().endswith(b"\n"):
            log.write("\n")  # end a line cut short by a kill, so the next record starts on its own line

        def keep(record: dict) -> None:
            log.write(json.dumps(record) + "\n")
            log.flush()
            done[job_key(record, key)] = record
            bar.update()

        tasks = tasks_of(todo, group if run_group is not None else None)
        if workers == 1 or len(tasks) <= 1:
            for task in tasks:
                for record in _run_task(run, run_group, task):
                    keep(record)
        else:
            context = multiprocessing.get_context("spawn")
            slots = context.Queue()
            for slot in range(workers):
                slots.put(slot)
            gpus = torch.cuda.device_count()
            threads = max(1, (os.cpu_count() or 1) // workers)
            failures = []
            with ProcessPoolExecutor(workers, context, _init_worker, (slots, gpus, threads)) as pool:
                for future in as_completed([pool.submit(_run_task, run, run_group, task) for task in tasks]):
                    try:
                        for record in future.result():
                            keep(record)
                    except Exception as err:  # the other jobs go on and are kept; the first error is raised below
                        failures.append(err)
            if failures:
                bar.close()
                what = "ensembles" if run_group is not None else "jobs"
                raise RuntimeError(f"{len(failures)} of {len(tasks)} sweep {what} failed (the others are in "
                                   f"{log_path}); the first: {failures[0]!r}") from failures[0]
    bar.close()
    return [done[job_key(job, key)] for job in jobs]
