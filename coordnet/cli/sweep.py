"""``coordnet sweep``: many runs of one config, differing in the keys you name, trained as one batched ensemble.

    coordnet sweep --config configs/sweeps/camera_sine.yaml            # its sweep: section names the keys
    coordnet sweep --config configs/camera_sine.yaml --vary model.lr=[1e-4,3e-4,1e-3] --vary seed_everything=[0,1]
    coordnet sweep --config configs/camera_sine.yaml --vary model.lr=[1e-4,1e-3] --vary seed_everything=[0,1] --zip

A sweep is a list of values for each key that varies (``model.…``, ``data.…``, ``seed_everything``), in a config's
top-level ``sweep:`` section (``vary: {key: [values]}``, ``mode: product`` or ``zip``) or given with ``--vary
KEY=[values]`` (YAML lists). ``product`` (the default) runs every combination, ``zip`` the i-th value of every key
together. Each combination is a member: the single run ``coordnet fit`` would make with those values, named by them
(``m0-lr=0.0001-seed_everything=0``).

``--engine ensemble`` (the default) trains the members of one shape as one ``EnsembleModule`` (members of other
shapes are refused, naming the difference: sweep them separately, or with ``--engine single``) and logs to
``runs/sweep_<config>/version_k/<member>/`` (``--name`` to choose), one TensorBoard run each, with its settings in the HParams tab. ``--engine
single`` runs ``coordnet fit`` once per member, to ``runs/<name>/<member>/version_k``. ``--list`` prints the
members and runs nothing. Every other option is the
``fit`` option it is: ``--model.…``, ``--data.…`` and ``--seed_everything`` apply to every member, the rest
(``--trainer.…``, ``--checkpoint.…``, ``--name``) to the run. An interrupted ensemble resumes with ``coordnet sweep
--config runs/<name>/version_k/config.yaml --ckpt_path runs/<name>/version_k/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import yaml

MEMBER_SECTIONS = ("model", "data", "seed_everything")  # what may differ between members


def expand(vary: dict[str, list], mode: str = "product") -> list[dict[str, Any]]:
    """The members of a sweep: one {key: value} per combination (``product``) or per position (``zip``).

    Raises:
        ValueError: a key that may not vary, a value list that is empty or not a list, lists of unequal length
            under ``zip``, or an unknown mode.
    """
    if mode not in ("product", "zip"):
        raise ValueError(f"sweep mode {mode!r}: expected product or zip")
    if not vary:
        raise ValueError("sweep: no keys vary; give a sweep: section with vary: {key: [values]} or --vary KEY=[…]")
    for key, values in vary.items():
        if key.split(".")[0] not in MEMBER_SECTIONS:
            raise ValueError(f"sweep key {key!r}: only model.…, data.… and seed_everything keys vary between "
                             "members (the trainer's settings are the run's)")
        if not isinstance(values, list) or not values:
            raise ValueError(f"sweep key {key!r}: expected a non-empty list of values, got {values!r}")
    keys = list(vary)
    if mode == "zip":
        lengths = {key: len(vary[key]) for key in keys}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"sweep mode zip: the value lists differ in length ({lengths})")
        combinations = zip(*(vary[key] for key in keys))
    else:
        combinations = itertools.product(*(vary[key] for key in keys))
    return [dict(zip(keys, values)) for values in combinations]


def member_name(index: int, values: dict[str, Any]) -> str:
    """``m<index>-<last key part>=<value>-…`` (``seed`` for ``seed_everything``): a member's run name."""
    short = lambda key: "seed" if key == "seed_everything" else key.rsplit(".", 1)[-1]  # noqa: E731
    parts = [f"{short(key)}={value:g}" if isinstance(value, float) else f"{short(key)}={value}"
             for key, value in values.items()]
    from coordnet.training.ensemble import safe_name

    return safe_name("-".join([f"m{index}", *parts]))


def member_args(values: dict[str, Any]) -> list[str]:
    """A member's values as command-line overrides (``--model.lr 1e-4``): strings as they are (the parser reads them
    by the key's type: YAML reads 1e-4 as a string), other values as JSON."""
    return [arg for key, value in values.items()
            for arg in (f"--{key}", value if isinstance(value, str) else json.dumps(value))]


def split_options(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the options for every member: ``--model.…``, ``--data.…``, ``--seed_everything``; the run's options)."""
    members, run = [], []
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        takes_value = arg.startswith("--") and "=" not in arg and i + 1 < len(items) \
            and not items[i + 1].startswith("--")
        option = items[i:i + 2] if takes_value else [arg]
        key = arg[2:].split("=", 1)[0]
        (members if key.split(".")[0] in MEMBER_SECTIONS else run).extend(option)
        i += len(option)
    return members, run


def read_sweep_configs(files: Sequence[str], directory: Path) -> tuple[dict[str, list], str, list[Path], list[Path]]:
    """(the ``sweep:`` sections' keys and values, their mode, the member parts and the run parts of the files).

    Each file is checked (``coordnet.cli.lightning_cli.check_config_file``) and split in two written to ``directory``: its
    ``model:``, ``data:`` and ``seed_everything:`` (every member's) and the rest without ``sweep:`` (the run's).
    A later file's ``sweep:`` keys override an earlier's.
    """
    from coordnet.cli.lightning_cli import check_config_file

    vary, mode, member_files, run_files = {}, "product", [], []
    for i, file in enumerate(files):
        check_config_file(file)
        content = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        sweep = content.pop("sweep", None) or {}
        unknown = set(sweep) - {"vary", "mode"}
        if not isinstance(sweep, dict) or unknown:
            raise ValueError(f"config '{file}': its sweep: section takes vary: and mode:, got {sweep!r}")
        vary |= sweep.get("vary") or {}
        mode = sweep.get("mode", mode)
        for kind, parts, kept in (("member", member_files, {k: v for k, v in content.items() if k in MEMBER_SECTIONS}),
                                  ("run", run_files, {k: v for k, v in content.items() if k not in MEMBER_SECTIONS})):
            path = directory / f"{kind}-{i}" / Path(file).name
            path.parent.mkdir(parents=True)
            path.write_text(yaml.safe_dump(kept, sort_keys=False), encoding="utf-8")
            parts.append(path)
    return vary, mode, member_files, run_files


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coordnet sweep", description=__doc__.strip().splitlines()[0],
                                     epilog="Other options are coordnet fit's (coordnet fit --help).")
    parser.add_argument("--config", action="append", default=[], help="a config file (repeatable, as for fit)")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=[VALUES]",
                        help="a key and its values, a YAML list: --vary model.lr=[1e-4,1e-3] (repeatable)")
    parser.add_argument("--zip", action="store_true", help="pair the i-th values of every key (default: every "
                        "combination)")
    parser.add_argument("--engine", choices=("ensemble", "single"), default="ensemble",
                        help="ensemble: one batched model (default); single: one coordnet fit per member")
    parser.add_argument("--name", help="the sweep's run name (default: sweep_<the last config file's name>)")
    parser.add_argument("--list", action="store_true", help="print the members and their settings, and run nothing")
    parser.add_argument("--reconstruct", default="0", metavar="MEMBERS",
                        help="the members whose reconstructions TensorBoard shows: indices (0,3), all or none "
                             "(default: 0, the first)")
    parser.add_argument("--ckpt_path", help="resume an ensemble from its checkpoint (with its run's config.yaml)")
    return parser


def sweep_main(argv: Sequence[str], allow_imports: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``coordnet sweep``: run the sweep; returns one row per member (name, settings, final PSNRs, run directory)."""
    from coordnet.cli.lightning_cli import run_cli

    args, rest = parser().parse_known_args(list(argv))
    if not args.config:
        raise ValueError("coordnet sweep: give --config FILE (a fit config, with a sweep: section or --vary)")
    if args.ckpt_path or _is_ensemble_config(args.config[-1]):  # a saved ensemble run: resume or rerun it
        cli = run_cli(["fit", *(a for f in args.config for a in ("--config", f)), *rest,
                       *(["--ckpt_path", args.ckpt_path] if args.ckpt_path else [])], allow_imports=allow_imports,
                      ensemble=True)
        return _report(cli.trainer)
    name = args.name or f"sweep_{Path(args.config[-1]).stem}"
    with tempfile.TemporaryDirectory(prefix="coordnet-sweep-") as tmp:
        vary, mode, member_files, run_files = read_sweep_configs(args.config, Path(tmp))
        for assignment in args.vary:
            key, sep, text = assignment.partition("=")
            if not sep:
                raise ValueError(f"--vary {assignment!r}: expected KEY=[VALUES], e.g. model.lr=[1e-4,1e-3]")
            vary[key] = yaml.safe_load(text)
        members = expand(vary, "zip" if args.zip else mode)
        names = [member_name(i, values) for i, values in enumerate(members)]
        if args.list:
            for member, values in zip(names, members):
                print(f"{member}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
            return [{"member": member, **values} for member, values in zip(names, members)]
        common, run_options = split_options(rest)
        configs = [a for pair in zip(member_files, run_files) for f in pair for a in ("--config", str(f))]
        if args.engine == "single":
            rows = []
            for values, member in zip(members, names):
                print(f"coordnet sweep: member {member} ({len(rows) + 1} of {len(members)})", file=sys.stderr)
                cli = run_cli(["fit", *configs, *rest, *member_args(values), "--name", f"{name}/{member}"],
                              allow_imports=allow_imports)
                rows.append({"member": member, **values, "run_dir": cli.trainer.log_dir})
            return rows
        parts = [a for f in member_files for a in ("--config", str(f))]
        ensemble, rows = ensemble_config(parts, common, members, names, allow_imports)
        ensemble["model"]["reconstruction_members"] = chosen_members(args.reconstruct, names)
        rows_out = []
        for chunk in split_to_fit(ensemble, rows):
            ensemble_file = Path(tmp) / f"{name}.yaml"
            ensemble_file.write_text(yaml.safe_dump(chunk, sort_keys=False), encoding="utf-8")
            cli = run_cli(["fit", *(a for f in run_files for a in ("--config", str(f))), "--config",
                           str(ensemble_file), *run_options, "--name", name], allow_imports=allow_imports, ensemble=True)
            rows_out += _report(cli.trainer)
    return rows_out


def split_to_fit(ensemble: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    """The ensemble config split into consecutive ensembles that fit the device's memory (one when it fits)."""
    import torch

    from coordnet.training.ensemble import member_bytes, member_network, members_that_fit

    model, data = ensemble["model"], ensemble["data"]["member_data"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    per_member = member_bytes(member_network(model["members"][0], model["seeds"][0]), rows)
    size = members_that_fit(per_member, device)
    count = len(model["members"])
    if size < count:
        print(f"coordnet sweep: {count} members need ≈ {count * per_member / 2**30:.1f} GiB on {device}; training them "
              f"as {-(-count // size)} ensembles of at most {size}", file=sys.stderr)
    chunks = []
    for i in range(0, count, size):
        part = {key: model[key][i:i + size] for key in ("members", "seeds", "names")}
        chosen = [n for n in model.get("reconstruction_members") or [] if n in part["names"]]
        chunks.append({"model": part | ({"reconstruction_members": chosen} if "reconstruction_members" in model
                                        else {}),
                       "data": {"member_data": data[i:i + size]}})
    return chunks


def chosen_members(text: str, names: list[str]) -> list[str]:
    """The member names ``--reconstruct`` picks: ``all``, ``none`` or comma-separated indices.

    Raises:
        ValueError: an index that is not a member's.
    """
    if text in ("all", "none"):
        return list(names) if text == "all" else []
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--reconstruct {text!r}: expected member indices (0,3), all or none") from None
    bad = [i for i in indices if not 0 <= i < len(names)]
    if bad:
        raise ValueError(f"--reconstruct {text!r}: members are numbered 0 … {len(names) - 1}, got {bad}")
    return [names[i] for i in indices]


def _is_ensemble_config(file: str) -> bool:
    try:
        content = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False  # the CLI names what is wrong with it
    model = content.get("model") if isinstance(content, dict) else None
    return isinstance(model, dict) and "members" in model


def ensemble_config(member_configs: list[str], common: list[str], members: list[dict[str, Any]], names: list[str],
                    allow_imports: Sequence[str]) -> tuple[dict[str, Any], int]:
    """``ensemble_settings`` of the members' configs, each parsed as ``coordnet fit`` parses it (the files, the
    common overrides and the member's values)."""
    from coordnet.cli.lightning_cli import parse_config

    configs = [parse_config([*member_configs, *common, *member_args(values)], allow_imports) for values in members]
    return ensemble_settings(configs, names)


def ensemble_settings(configs: list[dict[str, Any]], names: list[str]) -> tuple[dict[str, Any], int]:
    """(the ensemble's ``model:`` and ``data:`` sections — ``EnsembleModule`` and ``EnsembleDataModule`` arguments —
    from each member's parsed fit config (its ``model``, ``data`` and ``seed_everything``), its sizes read from its
    data; the most points a member trains on in a step)."""
    from coordnet.data.base import CoordDataModule
    from coordnet.models.config import build_part

    settings, seeds, data, sizes, rows = [], [], [], {}, 0
    for config, member in zip(configs, names):
        seed = config.get("seed_everything")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"member {member}: seed_everything must be an integer in a sweep (each member's seed), "
                             f"got {seed!r}")
        key = json.dumps(config["data"], sort_keys=True, default=str)
        if key not in sizes:
            part = build_part(config["data"], CoordDataModule, what=f"member {member}: data")
            part.setup(device="cpu")
            sizes[key] = {"in_features": part.in_features, "out_features": part.out_features,
                          "data_range": part.data_range}
            rows = max(rows, min(part.batch_size or part.train_x.shape[0], part.train_x.shape[0]))
        settings.append(config["model"] | sizes[key])
        seeds.append(seed)
        data.append(config["data"])
    return {"model": {"members": settings, "seeds": seeds, "names": names}, "data": {"member_data": data}}, rows


def _report(trainer) -> list[dict[str, Any]]:
    """Print one line per member (final PSNRs, where it stopped) and the run directory; return the rows."""
    from coordnet.training.ensemble_runs import EnsembleRuns

    runs = next(c for c in trainer.callbacks if isinstance(c, EnsembleRuns))
    module = trainer.lightning_module
    stopped = module.stopped_at.cpu().tolist()
    rows = []
    for m, name in enumerate(module.names):
        final = runs.final[m] if runs.final else {}
        row = {"member": name, "train_psnr": final.get("final/train_psnr"), "test_psnr": final.get("final/test_psnr"),
               "stopped_at": stopped[m], "run_dir": str(Path(trainer.log_dir) / name)}
        rows.append(row)
        psnrs = ", ".join(f"{k.split('_')[0]} PSNR {v:.2f} dB" for k, v in row.items()
                          if k.endswith("_psnr") and v is not None)
        print(f"coordnet sweep: {name}: {psnrs}" + (f", stopped at step {stopped[m]}" if stopped[m] >= 0 else ""))
    print(f"coordnet sweep: {len(rows)} members in {trainer.log_dir}; view: tensorboard --logdir {trainer.log_dir}")
    return rows
