"""The config that rebuilds a model part: ``{"class_path": …, "init_args": {…}}``, jsonargparse's form.

Checkpoints keep a module's hyper-parameters as such configs, never as pickled objects, so that
``torch.load`` with its default ``weights_only=True`` reads them and ``load_from_checkpoint`` rebuilds
the parts through jsonargparse, the way the CLI builds them from YAML.
"""

from __future__ import annotations

import inspect
import sys

from torch import nn


def init_config(part: nn.Module, skip: tuple[str, ...] = ()) -> dict:
    """The class path of ``part`` and the ``__init__`` arguments it was built with, except ``skip``.

    Each argument is read from the attribute of the same name, so every class passed here keeps its
    constructor arguments as attributes (tested for every activation and encoding).
    """
    cls = type(part)
    names = [name for name, parameter in inspect.signature(cls.__init__).parameters.items()
             if name not in ("self", *skip) and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)]
    missing = [name for name in names if not hasattr(part, name)]
    if missing:
        raise TypeError(f"{cls.__name__} keeps no attribute for its argument(s) {', '.join(missing)}, "
                        "so its config cannot be written")
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": {n: getattr(part, n) for n in names}}


def imported_class(class_path: str, base: type) -> type | None:
    """The subclass of ``base`` that ``class_path`` (``module.Name``) names among the modules already imported, or
    None: a path read from a checkpoint or config never imports anything new."""
    module, _, name = class_path.rpartition(".")
    cls = getattr(sys.modules.get(module), name, None)
    return cls if isinstance(cls, type) and issubclass(cls, base) else None


def build_part(config: dict | nn.Module, base: type, *args: object, what: str = "config") -> nn.Module:
    """The object a ``{class_path, init_args}`` config builds, called with ``args`` before its ``init_args``; an object
    of ``base`` passes through. The class is looked up among the modules already imported (``imported_class``), so
    a config read from a checkpoint never imports anything new.

    Raises:
        ValueError: not such a mapping, or it names no imported subclass of ``base`` (the message names ``what``).
    """
    if isinstance(config, base):
        return config
    if not isinstance(config, dict) or not isinstance(config.get("class_path"), str):
        raise ValueError(f"{what}: expected a {{class_path, init_args}} mapping, got {config!r}")
    path = config["class_path"]
    cls = imported_class(path, base)
    if cls is None:
        raise ValueError(f"{what}: class_path {path!r} names no {base.__name__} of coordnet (nor of a package a "
                         "trusted config imported)")
    return cls(*args, **(config.get("init_args") or {}))
