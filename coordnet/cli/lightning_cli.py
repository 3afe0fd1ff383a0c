"""The LightningCLI behind ``coordnet fit``/``validate``/``test``: coordnet's defaults, run directories, resume checks,
the import policy of configs, and the checks that turn a bad config into one clear line (``coordnet.cli``)."""


import argparse
import inspect
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Sequence

# Lightning 2.6 still calls jsonargparse APIs deprecated in 4.49; the warnings are not the user's to act on.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

import yaml
from jsonargparse import set_parsing_settings
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from coordnet.data import CoordDataModule
from coordnet.data.base import check_seed
from coordnet.data.sources import existing_file
from coordnet.models.config import imported_class
from coordnet.training import (CHECKPOINT_DEFAULTS, PROGRESS_BAR_DEFAULTS, TRAINER_DEFAULTS, CoordNetModule,
                               DivergenceGuard, InterruptCheckpoint, ProgressBar, RunSummary, TrainingInterrupted)
from coordnet.training.checkpoint_io import with_safe_checkpoint_io
from coordnet.training.quiet import silence_lightning_noise
from coordnet.training.runs import (checkpoint_differences, claim_version, newer_checkpoint,
                                    read_checkpoint, run_of_checkpoint, wait_to_log_after)


DEFAULT_RUN_NAME = "coordnet"
SUBCOMMANDS = ("fit", "validate", "test")  # LightningCLI's; predict and demo are coordnet's own
RUN_LOGGER = "coordnet.training.runs.RunLogger"
TENSORBOARD_LOGGERS = ("pytorch_lightning.loggers.TensorBoardLogger", "lightning.pytorch.loggers.TensorBoardLogger",
                       "pytorch_lightning.loggers.tensorboard.TensorBoardLogger")
# What a config's class_path and callables may name (jsonargparse's import-path policy); everything else is denied.
ALLOWED_IMPORTS = ("coordnet", "torch.optim", "torch.nn", "pytorch_lightning", "lightning.pytorch")
DENIED_IMPORTS = ("pytorch_lightning.callbacks.lambda_function", "lightning.pytorch.callbacks.lambda_function")


class CoordNetCLI(LightningCLI):
    """LightningCLI whose model takes its input/output sizes and data range from the data module.

    The checkpoint, progress-bar and summary callbacks are always on, configured under ``checkpoint:``,
    ``progress_bar:`` and ``summary:`` (coordnet's defaults: ``last.ckpt`` every 500 steps, a refresh every 10, the
    closing line printed), and so are ``DivergenceGuard`` and ``InterruptCheckpoint``. Lightning's ``predict``
    subcommand is replaced by coordnet's (``predict_main``).
    """

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {k: v for k, v in LightningCLI.subcommands().items() if k in SUBCOMMANDS}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        if self.model_class is CoordNetModule:  # an ensemble's members carry their sizes (coordnet.sweep)
            for key in ("in_features", "out_features", "data_range"):
                parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in CHECKPOINT_DEFAULTS.items()})
        parser.add_argument("--name", type=str | None, default=None,
                            help="the run's name: it logs to runs/<name>/version_k (default: the config file's name, "
                                 "with the data's file name added when the command line changes it)")
        parser.add_lightning_class_args(ProgressBar, "progress_bar")
        parser.set_defaults({f"progress_bar.{k}": v for k, v in PROGRESS_BAR_DEFAULTS.items()})
        parser.add_lightning_class_args(RunSummary, "summary")

    @property
    def _subcommand_config(self):
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        """Check the trainer's values, then choose the run directory: runs/<config>/version_k unless a name was
        given; a fit resumed from the latest checkpoint of a run continues in that run's directory."""
        config = self._subcommand_config
        check_trainer_values(config)
        if self.subcommand not in (None, "fit"):  # validate/test/predict train nothing: no run directory
            config.trainer.logger = False
            self.save_config_callback = None
            return
        logger = config.trainer.logger
        self.run_name = config.get("name") or run_name(config)
        ckpt_path = Path(config.ckpt_path) if config.get("ckpt_path") else None
        if getattr(logger, "class_path", "") in TENSORBOARD_LOGGERS:  # the same logger, its version claimed atomically
            logger.class_path = RUN_LOGGER
        if not getattr(logger, "class_path", "").endswith(".RunLogger"):
            return
        if logger.init_args.name == DEFAULT_RUN_NAME:
            logger.init_args.name = self.run_name
        if ckpt_path is not None and run_of_checkpoint(ckpt_path) is not None:
            self._resume_in_run_dir(ckpt_path, logger.init_args)
        elif logger.init_args.version is not None:
            run_dir = Path(logger.init_args.save_dir) / logger.init_args.name / _version_dir(logger.init_args.version)
            if run_dir.is_dir() and any(run_dir.iterdir()):
                raise ValueError(f"trainer.logger.init_args.version {logger.init_args.version}: {run_dir} already "
                                 "holds a run; leave version unset for a new one, or resume it with --ckpt_path")

    def _set_seed(self) -> None:
        self._check_seed()
        super()._set_seed()

    def _check_seed(self) -> None:
        # Lightning would replace an out-of-range seed by a random one, with a warning
        seed = self._subcommand_config.get("seed_everything")
        if seed is not None and not isinstance(seed, bool):
            check_seed("seed_everything", seed)

    def _parse_ckpt_path(self) -> None:
        """Refuse a checkpoint coordnet cannot resume, or one trained with other model or data settings than the
        config asks for. (Lightning's own step would load the checkpoint's model settings over the config's
        without a word, and fail with a traceback on a file that is not a checkpoint.)"""
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else None
        if config is not None and config.get("ckpt_path"):
            self._check_resume(Path(config.ckpt_path), config)

    def _check_resume(self, ckpt_path: Path, config) -> None:
        checkpoint = read_checkpoint(ckpt_path)
        self._resume_step = int(checkpoint["global_step"])
        differences = checkpoint_differences(checkpoint, config.model.as_dict(),
                                             config.data.as_dict() if config.data is not None else None)
        if differences:
            listed = "; ".join(f"{key}: the checkpoint has {saved}, the config asks for {asked}"
                               for key, saved, asked in differences)
            raise ValueError(f"ckpt_path '{ckpt_path}': {listed}. A resumed fit continues the checkpoint's run with "
                             "its settings: drop these overrides, or start a new run without --ckpt_path")

    def _resume_in_run_dir(self, ckpt_path: Path, logger_args) -> None:
        """Log to ``<save_dir>/<name>/version_k`` when ``ckpt_path`` is the latest checkpoint of that run, with
        TensorBoard's ``purge_step`` one past the checkpoint's step s: the events the interrupted run wrote
        after s are hidden, so each step appears once. Not at s: the NTK and reconstruction logged at s before
        the checkpoint and the validation after it are not repeated on resume. Only the batch seen at s is, so
        its train/* appear twice if they are logged at s. The config is saved under a new name. From an older
        checkpoint, the branch logs to a new version of the same run name."""
        run_dir = run_of_checkpoint(ckpt_path)
        # ModelCheckpoint restores its state (the last.ckpt it writes to) only if its directory is spelled the same
        if Path(logger_args.save_dir).resolve() != run_dir.parents[1].resolve():
            logger_args.save_dir = str(run_dir.parents[1])
        logger_args.name = run_dir.parent.name
        newer = newer_checkpoint(ckpt_path, self._resume_step)
        if newer is not None:
            logger_args.version = logger_args.purge_step = None
            print(f"coordnet: {ckpt_path} (step {self._resume_step}) is not the latest checkpoint of {run_dir} "
                  f"({newer[0].name} is at step {newer[1]}): the branch logs to a new version", file=sys.stderr)
            return
        logger_args.version = int(run_dir.name.removeprefix("version_"))
        logger_args.purge_step = self._resume_step + 1
        wait_to_log_after(run_dir)
        resumes = 1
        while (run_dir / f"config_resume_{resumes}.yaml").exists():
            resumes += 1
        self.save_config_kwargs = self.save_config_kwargs | {"config_filename": f"config_resume_{resumes}.yaml"}

    def instantiate_trainer(self, **kwargs):
        """The Trainer, with coordnet's checkpoint writer, without the progress bar or checkpoint callbacks the
        trainer flags turn off (and no checkpoints outside ``fit``); with the logger off, a fit still gets its
        own run directory for its config and checkpoints."""
        config = self._get(self.config_init, "trainer", default={})
        extra = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        if config.get("enable_progress_bar") is False:
            extra = [c for c in extra if not isinstance(c, ProgressBar)]
        if config.get("enable_checkpointing") is False or self.subcommand not in (None, "fit"):
            extra = [c for c in extra if not isinstance(c, ModelCheckpoint)]
        kwargs["plugins"] = with_safe_checkpoint_io(config.get("plugins"))
        if not config.get("logger") and self.subcommand in (None, "fit") and config.get("default_root_dir") is None:
            root = Path("runs") / self.run_name
            kwargs["default_root_dir"] = str(root / _version_dir(claim_version(root)))
        return self._instantiate_trainer({**config, **kwargs}, extra)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except TrainingInterrupted as err:  # name the command that resumes the run, with the config it saved
            config = Path(self.trainer.log_dir) / self.save_config_kwargs.get("config_filename", "config.yaml")
            imports = "".join(f" --allow_import {shlex.quote(p)}" for p in _extra_imports)
            command = "fit" if self.model_class is CoordNetModule else "sweep"  # an ensemble: coordnet sweep
            err.resume_command = (f"coordnet {command} --config {shlex.quote(str(config))} --ckpt_path "
                                  f"{shlex.quote(str(err.checkpoint))}{imports}")
            raise


def run_name(config) -> str:
    """The last config file's name, with the data's source added (``camera_sine_cat``) when the command line fits
    another file or built-in than the config files name (or, where they name none, than the data class's default);
    ``coordnet`` without a config file."""
    files = [Path(str(f)) for f in config.get("config") or []]
    if not files:
        return DEFAULT_RUN_NAME
    data = config.data.as_dict() if config.get("data") is not None else {}
    asked = data.get("init_args") or {}
    data_class = imported_class(str(data.get("class_path", "")), CoordDataModule)
    defaults = inspect.signature(data_class).parameters if data_class is not None else {}
    for key in ("image", "signal"):
        if asked.get(key) is None:
            continue
        given = defaults[key].default if key in defaults else None
        for file in files:  # each was checked as a YAML mapping before parsing; a later file overrides
            section = yaml.safe_load(file.read_text(encoding="utf-8")).get("data")
            if isinstance(section, dict) and isinstance(section.get("init_args"), dict) and key in section["init_args"]:
                given = section["init_args"][key]
        if asked[key] != given:
            return f"{files[-1].stem}_{Path(str(asked[key])).stem}"
    return files[-1].stem


def _version_dir(version: int | str) -> str:
    return version if isinstance(version, str) else f"version_{version}"


def check_trainer_values(config) -> None:
    """Refuse trainer settings that Lightning would take and then fail on mid-run (a division by zero) or turn
    into something else without a word (an out-of-range seed becomes a random one)."""
    trainer = config.trainer
    if trainer.gradient_clip_val is not None:
        raise ValueError("trainer.gradient_clip_val: CoordNetModule takes its optimiser steps itself; "
                         "set model.gradient_clip_val instead")
    if config.get("checkpoint") and config.checkpoint.train_time_interval is not None:
        raise ValueError("checkpoint.train_time_interval: Lightning's ModelCheckpoint ignores it for a module that "
                         "takes its optimiser steps itself; set checkpoint.every_n_train_steps instead")
    if trainer.log_every_n_steps is not None and trainer.log_every_n_steps < 1:
        raise ValueError(f"trainer.log_every_n_steps must be ≥ 1, got {trainer.log_every_n_steps}")
    interval = trainer.val_check_interval
    if interval is not None and not (interval >= 1 if isinstance(interval, int) else 0 < interval <= 1):
        raise ValueError(f"trainer.val_check_interval must be a step count ≥ 1 or a fraction in (0, 1], "
                         f"got {interval}")


def set_import_policy(allow_imports: Sequence[str] = ()) -> None:
    """Let config values name only ``ALLOWED_IMPORTS`` and ``allow_imports`` (jsonargparse's import-path policy,
    process-wide; an earlier call's extra packages are denied again)."""
    global _extra_imports
    for name in allow_imports:
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(f"--allow_import {name!r}: expected a package or module name such as mypackage")
    denied = [*DENIED_IMPORTS, *(set(_extra_imports) - set(allow_imports))]
    set_parsing_settings(import_path_denylist=["*", *denied], import_path_allowlist=[*ALLOWED_IMPORTS, *allow_imports])
    _extra_imports = tuple(allow_imports)


_extra_imports: tuple[str, ...] = ()


def run_cli(args: list[str] | None = None, run: bool = True, allow_imports: Sequence[str] = (),
            cli_class: type[CoordNetCLI] | None = None, ensemble: bool = False) -> CoordNetCLI:
    """LightningCLI over ``CoordNetModule`` and any ``CoordDataModule``; ``args`` None reads sys.argv.

    ``run=False``: parse and instantiate only (no subcommand in ``args``); the caller runs ``cli.trainer``.
    ``allow_imports``: packages beyond coordnet, torch.optim, torch.nn and Lightning that config values may name.
    ``cli_class``: a subclass of ``CoordNetCLI`` to use. ``ensemble``: over ``EnsembleModule`` and
    ``EnsembleDataModule`` instead (``coordnet sweep``).
    """
    if ensemble:
        from coordnet.data.ensemble import EnsembleDataModule
        from coordnet.training.ensemble import EnsembleModule

        model_class, data_class = EnsembleModule, EnsembleDataModule
    else:
        model_class, data_class = CoordNetModule, CoordDataModule
    defaults = TRAINER_DEFAULTS | {
        "logger": {
            "class_path": RUN_LOGGER,
            "init_args": {"save_dir": "runs", "name": DEFAULT_RUN_NAME, "default_hp_metric": False},
        },
        # added to the config's callbacks, not replaced by them
        "callbacks": [DivergenceGuard(), InterruptCheckpoint()],
    }
    set_import_policy(allow_imports)
    silence_lightning_noise()
    argv = sys.argv
    if args is not None:  # a script's own options in sys.argv are not the CLI's (LightningCLI warns about both)
        sys.argv = argv[:1]
    try:
        return (cli_class or CoordNetCLI)(
            model_class,
            data_class,
            subclass_mode_data=not ensemble,
            trainer_defaults=defaults,
            seed_everything_default=0,
            auto_configure_optimizers=False,
            # parse errors raise (and main() prints one line) instead of jsonargparse's 100-line usage dump
            parser_kwargs={"exit_on_error": False} | {name: {"exit_on_error": False} for name in SUBCOMMANDS},
            args=args,
            run=run,
        )
    finally:
        sys.argv = argv


class _ParseOnly(CoordNetCLI):
    """Parses and checks a config as ``fit`` would, and builds nothing (no run directory is claimed)."""

    def before_instantiate_classes(self) -> None:
        check_trainer_values(self.config)

    def _set_seed(self) -> None:
        self._check_seed()  # checked, not set: parsing changes no global state

    def instantiate_classes(self) -> None:
        pass


def parse_config(args: list[str], allow_imports: Sequence[str] = ()) -> dict:
    """The settings ``coordnet fit`` reads from ``args`` (``--config`` files and overrides), as plain values:
    ``model`` (CoordNetModule's arguments), ``data`` ({class_path, init_args}), ``seed_everything``, …"""
    return run_cli(args, run=False, allow_imports=allow_imports, cli_class=_ParseOnly).config.as_dict()


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
    denied = re.search(r"Importing '([\w.]+)' is not allowed, denied by the '([\w.*]+)' entry", text)
    if denied:
        path = ".".join(re.findall(r'Parser key "([^"]+)"', text)) or "config"
        package = denied.group(1).split(".")[0] if denied.group(2) == "*" else denied.group(2)
        return (f"{path}: a config may not import {denied.group(1)!r} (only coordnet, torch.optim, torch.nn and "
                f"Lightning, without LambdaCallback); to trust package {package!r}, add --allow_import {package}")
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


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def check_config_file(path: str) -> None:
    """Refuse, naming the file, a config that is missing, not a regular file, empty, binary, malformed YAML,
    has a duplicate key, or is not a mapping of keys at its top level."""
    name = f"config '{path}'"
    file = existing_file(path, name, "a YAML file")
    if file is None:
        raise FileNotFoundError(f"{name}: no such file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: is not a text file (not UTF-8), expected YAML") from None
    if "\0" in text:
        raise ValueError(f"{name}: is not a text file (it holds NUL bytes), expected YAML")
    try:
        content = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as err:
        where = f" (line {err.problem_mark.line + 1})" if getattr(err, "problem_mark", None) else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{name}: not valid YAML{where}: {problem}") from None
    if content is None:
        raise ValueError(f"{name}: is empty; expected keys such as model:, data: and trainer:")
    if not isinstance(content, dict):
        kind = {list: "list", str: "string", bool: "boolean"}.get(type(content), "number")
        raise ValueError(f"{name}: its top level is a {kind}; expected a mapping of keys such as model:, data: and "
                         "trainer:")


def split_allow_imports(args: list[str]) -> tuple[list[str], list[str]]:
    """(the arguments without ``--allow_import PKG`` / ``--allow_import=PKG``, the packages named)."""
    rest, packages = [], []
    items = iter(args)
    for arg in items:
        if arg == "--allow_import":
            package = next(items, None)
            if package is None:
                raise ValueError("--allow_import: expected a package name after it")
            packages.append(package)
        elif arg.startswith("--allow_import="):
            packages.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return rest, packages


def config_files(args: list[str]) -> list[str]:
    """The files given with ``--config FILE``, ``-c FILE`` or ``--config=FILE``."""
    files = [b for a, b in zip(args, args[1:]) if a in ("--config", "-c")]
    return files + [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
