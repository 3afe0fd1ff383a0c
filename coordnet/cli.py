"""The ``coordnet`` command.

    coordnet fit --config configs/camera_sine.yaml        # LightningCLI: fit/validate/test/predict
    coordnet fit --config configs/camera_sine.yaml --print_config
    coordnet demo                                          # camera 128×128, SIREN vs ReLU, PSNR table

Errors a user can cause (a bad path, an unknown activation, a bad value) end with one line on
stderr and exit code 2; set ``COORDNET_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

# Lightning 2.6 still calls jsonargparse APIs deprecated in 4.49; the warnings are not the user's to act on.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from coordnet.data import CoordDataModule
from coordnet.training import CHECKPOINT_DEFAULTS, PROGRESS_BAR_DEFAULTS, TRAINER_DEFAULTS, CoordNetModule


DEFAULT_RUN_NAME = "coordnet"
SUBCOMMANDS = ("fit", "validate", "test", "predict")


class CoordNetCLI(LightningCLI):
    """LightningCLI whose model takes its input/output sizes and data range from the data module.

    The checkpoint and progress-bar callbacks are always on, configured under ``checkpoint:`` and
    ``progress_bar:`` (coordnet's defaults: ``last.ckpt`` every 500 steps, a refresh every 10).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in ("in_features", "out_features", "data_range"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in CHECKPOINT_DEFAULTS.items()})
        parser.add_lightning_class_args(TQDMProgressBar, "progress_bar")
        parser.set_defaults({f"progress_bar.{k}": v for k, v in PROGRESS_BAR_DEFAULTS.items()})

    def before_instantiate_classes(self) -> None:
        """Name the run after its last config file (runs/<config>/version_k) unless a name was given."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        logger = config.trainer.logger
        files = config.get("config") or []
        if files and getattr(logger, "class_path", "").endswith("TensorBoardLogger") \
                and logger.init_args.name == DEFAULT_RUN_NAME:
            logger.init_args.name = Path(str(files[-1])).stem


def run_cli(args: list[str] | None = None, run: bool = True) -> CoordNetCLI:
    """LightningCLI over ``CoordNetModule`` and any ``CoordDataModule``; ``args`` None reads sys.argv.

    ``run=False``: parse and instantiate only (no subcommand in ``args``); the caller runs ``cli.trainer``.
    """
    defaults = TRAINER_DEFAULTS | {
        "logger": {
            "class_path": "pytorch_lightning.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "runs", "name": DEFAULT_RUN_NAME, "default_hp_metric": False},
        }
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
    becomes ``data.protocol: expected Literal['memorize', 'fourier'], got bogus``.
    """
    text = str(err)
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
    except (ValueError, FileNotFoundError, TypeError) as err:
        if os.environ.get("COORDNET_DEBUG"):
            raise
        while err.__cause__ is not None:  # jsonargparse wraps the error a data module raised
            err = err.__cause__
        print(f"coordnet: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
