"""One runner for every study: the same options, resume, progress bar and outputs for each.

A study is one module (``coordnet/experiments/<name>.py``) holding, in this order:

- ``NAME``: its results go to ``results/<NAME>/`` (``results/<NAME>-quick/`` under ``--quick``, so a quick
  run never touches the full study's results);
- its settings, as plain upper-case values;
- ``jobs(quick: bool, out: Path) -> list[dict]``: one dict of JSON values per unit of work, holding everything
  ``run`` reads (a job runs in a fresh process, where ``--set`` overrides are not seen); ``out`` is the output
  folder, where a job may keep files of its own (a TensorBoard run);
- ``run(job: dict) -> dict``: the job's results (JSON values); its record is the job's settings and these;
- ``report(records: list[dict]) -> (Figure, str)``: the figure and the Markdown summary of all records;
- optionally ``tables(records) -> dict[str, list[dict]]``: CSV files beyond ``records.csv`` (name → rows);
- optionally ``group(job) -> str`` and ``run_group(jobs) -> list[dict]``: jobs of one group key train as one
  ensemble of networks (``coordnet.models.ensemble``), ``run_group`` returning each job's results as ``run`` would.
  ``--engine ensemble`` (the default for such a study) runs them so, ``--engine single`` one ``run`` per job; each
  record names its ``engine``.

``run_study`` writes ``records.jsonl`` (one record per finished job, appended as each finishes), ``records.csv``
(their scalar fields), each extra table, ``<NAME>.png`` and ``summary.md``. A study interrupted at any point
resumes where it stopped: finished jobs are read back from ``records.jsonl``, never run twice
(``coordnet.experiments.sweeps``). docs/extending.md shows a study written from scratch.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence

import yaml

from coordnet.experiments.sweeps import default_workers, run_sweep
from coordnet.tables import write_csv

STUDY_ATTRIBUTES = ("NAME", "jobs", "run", "report")


def missing_attributes(module: ModuleType) -> list[str]:
    """The names of ``STUDY_ATTRIBUTES`` that ``module`` lacks (none: it is a study)."""
    return [attr for attr in STUDY_ATTRIBUTES if not hasattr(module, attr)]


def available_studies() -> list[str]:
    """The names of the study modules in ``coordnet.experiments``."""
    import coordnet.experiments

    names = [info.name for info in pkgutil.iter_modules(coordnet.experiments.__path__)]
    return [name for name in names if not missing_attributes(importlib.import_module(f"coordnet.experiments.{name}"))]


def load_study(name: str) -> ModuleType:
    """The study ``coordnet.experiments.<name>``, else the importable module ``name`` (a study of your own, e.g.
    ``mylab.sweep``).

    Raises:
        ValueError: no such module, or it lacks a study's names.
    """
    for path in (f"coordnet.experiments.{name}", name):
        try:
            study = importlib.import_module(path)
            break
        except ModuleNotFoundError as err:
            if not path.startswith(err.name or "\0"):  # a module the study itself imports is missing
                raise
    else:
        raise ValueError(f"unknown study {name!r}; coordnet's are {', '.join(available_studies())}")
    missing = missing_attributes(study)
    if missing:
        raise ValueError(f"{path} is not a study: it lacks {', '.join(missing)} (see coordnet.experiments.study)")
    return study


def settings(study: ModuleType) -> dict[str, object]:
    """The study's settings: the upper-case names its own file assigns at the top (not NAME, _PRIVATE or imports)."""
    tree = ast.parse(inspect.getsource(study))
    names = [target.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
             for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
             if isinstance(target, ast.Name) and target.id.isupper() and target.id[0] != "_" and target.id != "NAME"]
    return {name: getattr(study, name) for name in names}


def apply_settings(study: ModuleType, assignments: Sequence[str]) -> None:
    """Set the study's upper-case settings from ``KEY=VALUE`` strings (VALUE in YAML: 16, [1, 2], camera).

    Raises:
        ValueError: not KEY=VALUE, a KEY the study does not have, or a VALUE of another kind than its default.
    """
    known = settings(study)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or key not in known:
            raise ValueError(f"--set {assignment!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        default, value = getattr(study, key), yaml.safe_load(text)
        if isinstance(default, (tuple, list)):
            value = tuple(value) if isinstance(value, list) else (value,)
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if type(value) is not type(default):
            raise ValueError(f"--set {assignment!r}: {key} is a {type(default).__name__} ({default!r}), "
                             f"got a {type(value).__name__}")
        setattr(study, key, value)


def output_dir(study: ModuleType, quick: bool) -> Path:
    return Path("results") / (f"{study.NAME}-quick" if quick else study.NAME)


def scalar_fields(record: dict) -> dict:
    """The record without its list and dict fields (curves), for ``records.csv``."""
    return {k: v for k, v in record.items() if not isinstance(v, (list, dict))}


def record(run: Callable[[dict], dict], job: dict, engine: str | None = None) -> dict:
    """The job's settings and the results ``run`` returns for it (a module-level function, so processes take it),
    with the ``engine`` that ran it when the study has two."""
    return job | run(job) | ({"engine": engine} if engine else {})


def record_group(run_group: Callable[[list[dict]], list[dict]], jobs: list[dict]) -> list[dict]:
    """Each job's settings and its results from one ``run_group`` call (one ensemble)."""
    return [job | results | {"engine": "ensemble"} for job, results in zip(jobs, run_group(jobs))]


def has_ensembles(study: ModuleType) -> bool:
    return hasattr(study, "group") and hasattr(study, "run_group")


def run_study(study: ModuleType, quick: bool = False, out: str | Path | None = None, workers: int = 1,
              figure_copy: str | Path | None = None, progress: bool = True,
              engine: str = "ensemble") -> tuple[list[dict], str]:
    """Run every job of ``study`` not already in ``<out>/records.jsonl`` and write its outputs; (records, summary).
    ``engine``: ``ensemble`` (jobs of one group as one model, where the study groups them) or ``single``."""
    if engine not in ("ensemble", "single"):
        raise ValueError(f"engine {engine!r}: expected ensemble or single")
    out = Path(out) if out is not None else output_dir(study, quick)
    jobs = study.jobs(quick, out)
    key = sorted({k for job in jobs for k in job})
    grouped = has_ensembles(study) and engine == "ensemble"
    records = run_sweep(jobs, partial(record, study.run, engine="single" if has_ensembles(study) else None),
                        out / "records.jsonl", key, workers, desc=study.NAME, progress=progress,
                        group=study.group if grouped else None,
                        run_group=partial(record_group, study.run_group) if grouped else None)
    figure, summary = study.report(records)
    extra = study.tables(records) if hasattr(study, "tables") else {}
    for name, rows in ({"records": [scalar_fields(r) for r in records]} | extra).items():
        write_csv(out / f"{name}.csv", rows)
    for path in (out / f"{study.NAME}.png", figure_copy):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=120)
    (out / "summary.md").write_text(summary.rstrip() + "\n")
    return records, summary


def parser(study: ModuleType) -> argparse.ArgumentParser:
    """The options every study takes."""
    doc = (study.__doc__ or study.NAME).strip()
    listed = ", ".join(f"{k}={v!r}" for k, v in settings(study).items())
    parser = argparse.ArgumentParser(prog=f"{study.NAME}", description=doc.splitlines()[0],
                                     epilog=f"settings (--set KEY=VALUE): {listed}")
    parser.add_argument("--quick", action="store_true", help="a small version of the study, for tests and a first look")
    parser.add_argument("--out", help=f"output directory (default: results/{study.NAME}, results/{study.NAME}-quick "
                                      "with --quick); an interrupted study resumes from <out>/records.jsonl")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="jobs run at once, one process each (default: one per GPU, else 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting of the full study (repeatable), e.g. --set SEEDS=16")
    parser.add_argument("--figure-copy", help=f"also save the figure here (docs/{study.NAME}.png for the docs)")
    if has_ensembles(study):
        parser.add_argument("--engine", choices=("ensemble", "single"), default="ensemble",
                            help="ensemble: the jobs of one network shape train as one batched model (default); "
                                 "single: one network at a time")
    return parser


def main(name: str, argv: Sequence[str] | None = None) -> None:
    """``python scripts/<name>.py [options]``: parse the options, run the study, print its summary."""
    study = load_study(name)
    args = parser(study).parse_args(argv)
    apply_settings(study, args.set)
    out = Path(args.out) if args.out is not None else output_dir(study, args.quick)
    _, summary = run_study(study, args.quick, out, args.workers, args.figure_copy,
                           engine=getattr(args, "engine", "ensemble"))
    print(summary)
    print(f"\nwrote {out}/")
