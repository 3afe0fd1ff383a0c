"""The ``coordnet`` command.

    coordnet fit --config configs/camera_sine.yaml        # LightningCLI: fit/validate/test
    coordnet fit --config configs/camera_sine.yaml --print_config
    coordnet test --config runs/camera_sine/version_0/config.yaml --ckpt_path runs/…/checkpoints/last.ckpt
    coordnet predict --ckpt_path runs/…/checkpoints/last.ckpt --resolution 512   # render to PNG / WAV / .npy
    coordnet sweep --config configs/sweeps/camera_sine.yaml    # many runs of one config, as one batched ensemble
    coordnet demo                                          # camera 128×128, SIREN vs ReLU, PSNR table

    coordnet fit --config configs/camera_sine.yaml --ckpt_path runs/camera_sine/version_0/checkpoints/last.ckpt

Each run logs to a new ``runs/<config>/version_k``, claimed atomically (with ``--trainer.logger false`` the
directory still holds the config and checkpoints). A fit resumed from the latest checkpoint of
``runs/<name>/version_k/checkpoints/`` continues in that directory: TensorBoard hides the events the interrupted
run wrote past the checkpoint's step, and the resumed invocation's config is saved beside the original
``config.yaml`` as ``config_resume_<j>.yaml``. Resuming from an older checkpoint of a run branches it into a new
version. A resumed fit must ask for the checkpoint's model and data settings: a different one is refused,
naming each. ``test`` scores the test split (every point under ``memorize``) and writes nothing. ``predict``
renders a checkpoint (``coordnet.training.render``) and writes only the file it names. ``sweep`` is
``coordnet.cli.sweep`` (docs/ensembles.md).

What a config may do: name classes (``class_path``) and functions only from coordnet, ``torch.optim``,
``torch.nn`` and Lightning (not its ``LambdaCallback``); anything else, including a module beside the config, is
refused before it is imported. ``--allow_import PKG`` (repeatable, before or after the subcommand) lets a trusted
config use classes of the package PKG.

Exit codes: 2 for errors a user can cause (a bad path, an unknown activation, a bad value, a full disk), 1 when
training diverges (``TrainingDiverged``: a NaN or infinite loss; the message names the step and the last good
checkpoint), 130 / 143 after SIGINT / SIGTERM (a checkpoint is written at the step reached and the line names the
command that resumes it). Each ends with one line on stderr; set ``COORDNET_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from pytorch_lightning.utilities.exceptions import MisconfigurationException

from coordnet.cli.lightning_cli import (CoordNetCLI, check_config_file, config_files, one_line, parse_config,
                                        run_cli, split_allow_imports)
from coordnet.notes import InputNote
from coordnet.training import TrainingDiverged, TrainingInterrupted

__all__ = ["CoordNetCLI", "check_config_file", "main", "parse_config", "run_cli"]

HELP = """usage: coordnet {fit,validate,test,predict,sweep,demo} ...

Coordinate networks trained with PyTorch Lightning, with their Neural Tangent Kernel watched in TensorBoard.

subcommands:
  fit        train from a config:   coordnet fit --config configs/camera_sine.yaml
  validate   score a checkpoint on the test split, with the validation loop
  test       score a checkpoint on the test split (every point under protocol memorize); writes nothing
  predict    render a checkpoint to PNG / WAV / .npy, at its training size or another (--resolution 512)
  sweep      many runs of one config (--vary model.lr=[1e-4,1e-3]), trained as one batched ensemble
  demo       camera 128×128, SIREN against ReLU, a table of final PSNRs (~3 min on 2 CPU cores)

coordnet SUBCOMMAND --help shows its options; fit --help describes every model: and data: key.
--allow_import PKG (repeatable) lets a config name classes of the package PKG."""


def _show_note(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning) -> None:
    if issubclass(category, InputNote):
        print(f"coordnet: note: {message}", file=sys.stderr)
    else:
        _default(message, category, filename, lineno, file, line)


def _fail(message: str, code: int) -> None:
    if os.environ.get("COORDNET_DEBUG"):
        raise
    print(f"coordnet: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    warnings.showwarning = _show_note
    try:
        args, allow_imports = split_allow_imports(args)
        if not args or args[0] in ("-h", "--help"):
            print(HELP)
        elif args[0] == "demo":
            from coordnet.demo import main as demo_main

            demo_main(args[1:])
        elif args[0] == "sweep":
            from coordnet.cli.sweep import sweep_main

            sweep_main(args[1:], allow_imports)
        elif args[0] == "predict":
            from coordnet.cli.predict import predict_main

            for path in config_files(args):
                check_config_file(path)
            predict_main(args[1:])
        else:
            for path in config_files(args):
                check_config_file(path)
            if argv is None:  # LightningCLI reads sys.argv itself (given both, it warns)
                sys.argv[1:] = args
            run_cli(None if argv is None else args, allow_imports=allow_imports)
    except argparse.ArgumentError as err:  # a key, type or value the config parser refused
        _fail(one_line(err), 2)
    except TrainingDiverged as err:  # not a usage error: the run failed, its last good checkpoint is kept
        _fail(str(err), 1)
    except TrainingInterrupted as err:  # the work up to the step reached is in the checkpoint
        if os.environ.get("COORDNET_DEBUG"):
            raise
        resume = getattr(err, "resume_command", None)
        print(f"coordnet: {err}" + (f"; resume with: {resume}" if resume else ""), file=sys.stderr)
        sys.exit(err.exit_code)
    except OSError as err:  # a read-only or full disk, a permission; FileNotFoundError included
        if isinstance(err, FileNotFoundError) and err.filename is None:
            _fail(str(_root_cause(err)), 2)
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}", 2)
    except (ValueError, TypeError, MisconfigurationException) as err:
        _fail(str(_root_cause(err)), 2)


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:  # jsonargparse wraps the error a data module raised
        err = err.__cause__
    return err
