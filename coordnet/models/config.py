"""The config that rebuilds a model part: ``{"class_path": …, "init_args": {…}}``, jsonargparse's form.

Checkpoints keep a module's hyper-parameters as such configs, never as pickled objects, so that
``torch.load`` with its default ``weights_only=True`` reads them and ``load_from_checkpoint`` rebuilds
the parts through jsonargparse, the way the CLI builds them from YAML.
"""

from __future__ import annotations

import inspect

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
