"""The ``coordnet`` command.

    coordnet fit --config configs/camera_sine.yaml        # LightningCLI: fit/validate/test/predict
    coordnet fit --config configs/camera_sine.yaml --print_config
    coordnet demo                                          # camera 128×128, SIREN vs ReLU, PSNR table

    coordnet fit --config configs/camera_sine.yaml --ckpt_path runs/camera_sine/version_0/checkpoints/last.ckpt

Each run logs to a new ``runs/<config>/version_k``. A run resumed from a checkpoint of
``runs/<name>/version_k/checkpoints/`` continues in that directory: TensorBoard hides the events the
interrupted run wrote past the checkpoint's step, and the resumed invocation's config is saved beside the
original ``config.yaml`` as ``config_resume_<j>.yaml``.

Exit codes: 2 for errors a user can cause (a bad path, an unknown activation, a bad value), 1 when training
diverges (``TrainingDiverged``: a NaN or infinite loss; the message names the step and the last good
checkpoint). Either ends with one line on stderr; set ``COORDNET_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# Lightning 2.6 still calls jsonargparse APIs deprecated in 4.49; the warnings are not the user's to act on.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from coordnet.data import CoordDataModule
from coordnet.training import (CHECKPOINT_DEFAULTS, PROGRESS_BAR_DEFAULTS, TRAINER_DEFAULTS, CoordNetModule,
                               DivergenceGuard, ProgressBar, TrainingDiverged)


DEFAULT_RUN_NAME = "coordnet"
SUBCOMMANDS = ("fit", "validate", "test", "predict")


class CoordNetCLI(LightningCLI):
    """LightningCLI whose model takes its input/output sizes and data range from the data module.

    The checkpoint and progress-bar callbacks are always on, configured under ``checkpoint:`` and
    ``progress_bar:`` (coordnet's defaults: ``last.ckpt`` every 500 steps, a refresh every 10), and so is
    ``DivergenceGuard``.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in ("in_features", "out_features", "data_range"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(ProgressBar, "progress_bar")
        parser.set_defaults({f"progress_bar.{k}": v for k, v in PROGRESS_BAR_DEFAULTS.items()})

    def before_instantiate_classes(self) -> None:
        """Name the run after its last config file (runs/<config>/version_k) unless a name was given; a fit
        resumed from a checkpoint in a run directory continues in that directory."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.gradient_clip_val is not None:
            raise ValueError("trainer.gradient_clip_val: CoordNetModule takes its optimiser steps itself; "
                             "set model.gradient_clip_val instead")
        if config.get("checkpoint") and config.checkpoint.train_time_interval is not None:
            raise ValueError("checkpoint.train_time_interval: Lightning's ModelCheckpoint ignores it for a module that "
                             "takes its optimiser steps itself; set checkpoint.every_n_train_steps instead")
        logger = config.trainer.logger
        if not getattr(logger, "class_path", "").endswith("TensorBoardLogger"):
            return
        files = config.get("config") or []
        if files and logger.init_args.name == DEFAULT_RUN_NAME:
            logger.init_args.name = Path(str(files[-1])).stem
        if self.subcommand == "fit" and config.ckpt_path and logger.init_args.version is None:
            self._resume_in_run_dir(Path(config.ckpt_path), logger.init_args)

    def _resume_in_run_dir(self, ckpt_path: Path, logger_args) -> None:
        """Log to ``<save_dir>/<name>/version_k`` when ``ckpt_path`` is in its ``checkpoints/``, with
        TensorBoard's ``purge_step`` one past the checkpoint's step s: the events the interrupted run wrote
        after s are hidden, so each step appears once. Not at s: the NTK and reconstruction logged at s before
        the checkpoint and the validation after it are not repeated on resume. Only the batch seen at s is, so
        its train/* appear twice if they are logged at s. The config is saved under a new name."""
        version = re.fullmatch(r"version_(\d+)", ckpt_path.parent.parent.name)
        if ckpt_path.parent.name != "checkpoints" or version is None or len(ckpt_path.parents) < 4:
            return
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"ckpt_path '{ckpt_path}': no such checkpoint file")
        run_dir = ckpt_path.parents[1]
        # ModelCheckpoint restores its state (the last.ckpt it writes to) only if its directory is spelled the same
        if Path(logger_args.save_dir).resolve() != run_dir.parents[1].resolve():
            logger_args.save_dir = str(run_dir.parents[1])
        logger_args.name, logger_args.version = run_dir.parent.name, int(version.group(1))
        # the whole checkpoint is loaded just below by Lightning anyway; mmap reads only what is needed here
        step = torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True)["global_step"]
        logger_args.purge_step = step + 1
        resumes = 1
        while (run_dir / f"config_resume_{resumes}.yaml").exists():
            resumes += 1
        self.save_config_kwargs = self.save_config_kwargs | {"config_filename": f"config_resume_{resumes}.yaml"}


def run_cli(args: list[str] | None = None, run: bool = True) -> CoordNetCLI:
    """LightningCLI over ``CoordNetModule`` and any ``CoordDataModule``; ``args`` None reads sys.argv.

    ``run=False``: parse and instantiate only (no subcommand in ``args``); the caller runs ``cli.trainer``.
    """
    defaults = TRAINER_DEFAULTS | {
        "logger": {
            "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "runs", "name": DEFAULT_RUN_NAME, "default_hp_metric": False},
        },
        "callbacks": [DivergenceGuard()],  # added to the config's callbacks, not replaced by them
    }
    return CoordNetCLI(
        CoordNetModule,
        CoordDataModule,
        subclass_mode_data=True,
        trainer_defaults=defaults,
        seed_everything_default=0,
        auto_configure_optimizers=False,
        # parse errors raise (and main() prints one line) instead of jsonargparse's 100-line usage dump
        parser_kwargs={"exit_on_error": False} | {name: {"exit_on_error": False} for name in SUBCOMMANDS},
        args=args,
        run=run,
    )


def _type_name(text: str) -> str:
    """``<class 'float'>`` → ``float``, ``typing.Literal['a', 'b']`` → ``Literal['a', 'b']``."""
    return re.sub(r"<class '(?:[\w.]*\.)?(\w+)'>", r"\1", text).replace("typing.", "")


def one_line(err: argparse.ArgumentError) -> str:
    """jsonargparse's nested parse error as one line: the full key path, what was expected and what was given.

    ``Parser key "data": … Parser key "protocol": Expected a typing.Literal['memorize', 'fourier']. Got value: bogus``
    becomes ``data.protocol: expected Literal['memorize', 'fourier'], got bogus``; an unknown key, given in a
    config file or as an option, becomes ``model.hiden: unknown key; expected one that --help lists``.
    """
    text = str(err)
    unknown = re.search(r"does not accept option '([^']+)'|unrecognized arguments: --(\S+)", text)
    if unknown:
        return f"{unknown.group(1) or unknown.group(2)}: unknown key; expected one that --help lists"
    path = ".".join(re.findall(r'Parser key "([^"]+)"', text))
    expected = re.search(r"Expected an? (.+?)\. Got value: (.+)", text)
    if path and expected:
        return f"{path}: expected {_type_name(expected.group(1))}, got {expected.group(2).strip()}"
    union = re.search(r"Subtypes: \[(.*)\]", text)
    given = re.search(r"Given value: (.+)", text)
    if path and union and given:
        options = [_type_name(t.strip()) for t in re.split(r",\s*(?![^\[]*\])", union.group(1))]
        return f"{path}: expected {' or '.join(o for o in options if o != 'NoneType')}, got {given.group(1).strip()}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if args and args[0] == "demo":
            from coordnet.experiments.demo import main as demo_main

            demo_main(args[1:])
        else:
            run_cli(argv)
    except argparse.ArgumentError as err:  # a key, type or value the config parser refused
        if os.environ.get("COORDNET_DEBUG"):
            raise
        print(f"coordnet: error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as err:  # not a usage error: the run failed, its last good checkpoint is kept
        if os.environ.get("COORDNET_DEBUG"):
            raise
        print(f"coordnet: error: {err}", file=sys.stderr)
        sys.exit(1)
    except (ValueError, FileNotFoundError, TypeError, MisconfigurationException) as err:
        if os.environ.get("COORDNET_DEBUG"):
            raise
        while err.__cause__ is not None:  # jsonargparse wraps the error a data module raised
            err = err.__cause__
        print(f"coordnet: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
