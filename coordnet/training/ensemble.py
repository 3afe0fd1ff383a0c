"""``EnsembleModule``: M coordinate networks of one shape trained as one batched model, each member its own run.

Member m is the ``CoordNetModule`` its settings describe (the ``model:`` section of its config) with seed s_m:
its network is built under ``torch.manual_seed(s_m)``, so it starts from the weights of that single run
(``seed_everything(s_m)``), and it trains on its own targets (``EnsembleDataModule``) with its own learning rate
and optimiser state (``coordnet.training.member_optim``). The prediction is f_m(x) = MLP_m(x) + c_m, c_m the fixed
offset of its mean training target (``center_targets``), as for one module.

Loss: Σ_m L_m with L_m = (1/(N·O)) Σ (f_m(x) − y_m)², each member's own MSE, so the gradient of member m's
parameters is the gradient of L_m alone: each member's training is the computation of its single run (the
batched matrix products may add in another order: float32 round-off, docs/scale.md).

A member whose loss is NaN or infinite, or whose update would make a parameter NaN or infinite, is stopped at that
step s: its parameters stay those after s steps (the last finite ones), and the others go on. ``stopped_at[m]``
holds s (−1 while it trains); ``EnsembleRuns`` reports it by name. Only when every member has stopped does
training end, with ``TrainingDiverged``. Everything is decided on the device, without waiting for it each step.

Optimisers: Adam (the default, with lr) or SGD, from a member's ``optimizer`` config
(``{class_path: torch.optim.SGD, init_args: {lr: 0.1}}``); the members must share every setting but the learning
rate. Not supported (a clear error): learning-rate schedulers, other optimisers.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any, Sequence

import torch
from pytorch_lightning import Callback, LightningModule
from torch import Tensor

from coordnet.models import Activation, CoordMLP, Encoding, get_activation
from coordnet.models.config import build_part, init_config
from coordnet.models.ensemble import CoordMLPEnsemble
from coordnet.models.mlp import physical_memory
from coordnet.training.divergence import TrainingDiverged
from coordnet.training.member_optim import MEMBER_OPTIMIZERS, MemberOptimizer, clip_member_gradients
from coordnet.training.metrics import psnr
from coordnet.training.module import NETWORK_ARGUMENTS, CoordNetModule, align_logger_step
from coordnet.training.ntk_callback import NTKSpectrumCallback

MODULE_DEFAULTS = {name: p.default for name, p in inspect.signature(CoordNetModule).parameters.items()}
SHARED_SETTINGS = ("reconstruction_every_n_steps",)  # one value for the whole ensemble
CPU_PASS_FLOATS = 2**21  # a CPU pass's activations, ~8 MB: measured best on the project's CPU (docs/benchmarks.md)


def member_settings(settings: dict[str, Any], member: str = "member") -> dict[str, Any]:
    """A member's ``CoordNetModule`` settings with every default filled in and its activation and encoding as
    ``{class_path, init_args}`` configs (so a checkpoint holds no objects and each run's HParams list them all).

    Raises:
        ValueError: a key ``CoordNetModule`` does not take, or a learning-rate scheduler (named with ``member``).
    """
    unknown = sorted(set(settings) - set(MODULE_DEFAULTS))
    if unknown:
        raise ValueError(f"{member}: model settings {unknown} are not CoordNetModule's (expected some of "
                         f"{', '.join(MODULE_DEFAULTS)})")
    full = MODULE_DEFAULTS | dict(settings)
    if full["lr_scheduler"] is not None:
        raise ValueError(f"{member}: model.lr_scheduler is not supported by the ensemble engine; train this sweep "
                         "with --engine single")
    if isinstance(full["activation"], Activation):
        full["activation"] = init_config(full["activation"])
    if isinstance(full["encoding"], Encoding):
        full["encoding"] = init_config(full["encoding"], skip=("in_features",))
    return full


def member_network(settings: dict[str, Any], seed: int) -> CoordMLP:
    """Member's ``CoordMLP``, built under ``torch.manual_seed(seed)`` (the global RNG restored afterwards)."""
    network = {name: settings[name] for name in NETWORK_ARGUMENTS if name in settings}
    activation = settings["activation"]
    network["activation"] = (get_activation(activation) if isinstance(activation, str)
                             else build_part(activation, Activation, what="model.activation"))
    encoding = settings["encoding"]
    network["encoding"] = None if encoding is None else build_part(encoding, Encoding, settings["in_features"],
                                                                   what="model.encoding")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CoordMLP(**network)


def member_optimizer(settings: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    """(torch.optim class name, learning rate, its other settings) of a member: Adam(lr) without an ``optimizer``
    config; with one, its ``lr`` (torch's default where it gives none), as ``CoordNetModule`` does."""
    config = settings["optimizer"]
    if config is None:
        return "Adam", float(settings["lr"]), {}
    if not isinstance(config, dict) or "class_path" not in config:
        raise ValueError(f"model.optimizer: the ensemble engine takes a {{class_path, init_args}} config, "
                         f"got {config!r}")
    name = config["class_path"].rsplit(".", 1)[-1]
    if name not in MEMBER_OPTIMIZERS or not config["class_path"].startswith("torch.optim"):
        raise ValueError(f"model.optimizer {config['class_path']}: the ensemble engine trains with torch.optim.Adam "
                         f"or torch.optim.SGD; train this sweep with --engine single")
    args = dict(config.get("init_args") or {})
    defaults = inspect.signature(getattr(torch.optim, name)).parameters
    lr = float(args.pop("lr", defaults["lr"].default))
    allowed = MEMBER_OPTIMIZERS[name][1]
    refused = {k: v for k, v in args.items() if k not in allowed and v != defaults[k].default}
    if refused:
        raise ValueError(f"model.optimizer {name}: the ensemble engine does not support {refused}; it takes "
                         f"{', '.join(('lr',) + allowed)}")
    return name, lr, {k: v for k, v in args.items() if k in allowed}


def member_bytes(network: CoordMLP, rows: int) -> int:
    """Bytes one member needs to train on ``rows`` points a step, float32, an upper estimate: its parameters four
    times (themselves, their gradients, Adam's two moments) and, per row, every hidden layer's pre-activation,
    activation and gradient (3·Σ widths) and the output twice."""
    parameters = sum(p.numel() for p in network.parameters())
    return 4 * (4 * parameters + rows * (3 * sum(network.widths) + 2 * network.out_features))


def device_bytes(device: torch.device) -> int:
    """The memory of ``device``: a GPU's total memory, else this machine's RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return physical_memory()


def members_that_fit(per_member: int, device: torch.device, share: float = 0.8) -> int:
    """How many members of ``per_member`` bytes fit in ``share`` of ``device``'s memory (at least 1)."""
    return max(1, int(share * device_bytes(device)) // max(per_member, 1))


def safe_name(text: str) -> str:
    """``text`` in file-name-safe characters (a member's run directory)."""
    return re.sub(r"[^\w\-.=+,]", "_", text)


class EnsembleModule(LightningModule):
    """Train M coordinate networks of one shape as one batched model (see the module docstring).

    Args:
        members: each member's ``CoordNetModule`` settings (``hidden``, ``activation``, ``lr``, ``optimizer``, …; its
            config's ``model:`` section); ``in_features``, ``out_features`` and ``data_range`` come from the data.
        seeds: the seed each member's weights are drawn with.
        names: each member's run name (its directory and TensorBoard run); default ``member_<m>``.
        reconstruction_members: the members (by name) whose reconstructions are logged; default the first.
        members_per_pass: members in one forward/backward pass of a step (the step is the same computation either
            way); default all on a GPU, and on a CPU as many as fit its caches (``member_passes``).

    Raises:
        ValueError: members of different shapes or optimisers, or settings the ensemble engine does not support
            (each named).
    """

    def __init__(self, members: list[dict[str, Any]], seeds: list[int], names: list[str] | None = None,
                 reconstruction_members: list[str] | None = None, members_per_pass: int | None = None) -> None:
        super().__init__()
        names = [f"member_{m}" for m in range(len(members))] if names is None else [safe_name(n) for n in names]
        if not members or len(seeds) != len(members) or len(names) != len(members) or len(set(names)) != len(names):
            raise ValueError(f"EnsembleModule: expected one seed and one distinct name per member, got {len(members)} "
                             f"members, {len(seeds)} seeds and names {names}")
        settings = [member_settings(s, name) for s, name in zip(members, names)]
        if members_per_pass is not None and (isinstance(members_per_pass, bool) or members_per_pass < 1):
            raise ValueError(f"members_per_pass must be a positive integer or null (automatic), got {members_per_pass!r}")
        self.save_hyperparameters({"members": settings, "seeds": list(seeds), "names": names,
                                   "reconstruction_members": reconstruction_members,
                                   "members_per_pass": members_per_pass})
        self.names = names
        self.model = CoordMLPEnsemble([member_network(s, seed) for s, seed in zip(settings, seeds)])
        self._configure_optimizer(settings)
        for key in SHARED_SETTINGS:
            if len({s[key] for s in settings}) > 1:
                raise ValueError(f"EnsembleModule: model.{key} differs between members; it is one for the ensemble")
        self.settings = settings
        chosen = names[:1] if reconstruction_members is None else reconstruction_members
        missing = [n for n in chosen if n not in names]
        if missing:
            raise ValueError(f"reconstruction_members {missing}: not members of this ensemble ({', '.join(names)})")
        self.reconstruction_members = [names.index(n) for n in chosen]
        m, out = len(members), self.model.out_features
        self.register_buffer("output_offset", torch.zeros(m, 1, out))
        self.register_buffer("stopped_at", torch.full((m,), -1, dtype=torch.long))
        self.register_buffer("data_range", torch.tensor([float(s["data_range"]) for s in settings]), persistent=False)
        clip = [math.inf if s["gradient_clip_val"] is None else float(s["gradient_clip_val"]) for s in settings]
        self.register_buffer("max_grad_norms", torch.tensor(clip), persistent=False)
        self.clipped = any(math.isfinite(c) for c in clip)
        self.member_losses: Tensor | None = None  # (M,) of the last training step, on the device
        self.test_losses: Tensor | None = None  # (M,) of the last validation
        self.automatic_optimization = False

    def _configure_optimizer(self, settings: list[dict[str, Any]]) -> None:
        chosen = [member_optimizer(s) for s in settings]
        for m, (name, _, args) in enumerate(chosen[1:], 1):
            if (name, args) != (chosen[0][0], chosen[0][2]):
                raise ValueError(f"EnsembleModule: member {self.names[m]} trains with {name}{args}, member "
                                 f"{self.names[0]} with {chosen[0][0]}{chosen[0][2]}; an ensemble's members share "
                                 "the optimiser and all its settings but the learning rate")
        self.optimizer_name, self.optimizer_args = chosen[0][0], chosen[0][2]
        self.lrs = [lr for _, lr, _ in chosen]

    @property
    def num_members(self) -> int:
        return self.model.num_members

    def ntk_model(self) -> CoordMLPEnsemble:
        """The batched network: its members' outputs are the modules' minus constant offsets."""
        return self.model

    def forward(self, x: Tensor, members: slice = slice(None), parameters: list[Tensor] | None = None) -> Tensor:
        """(N, d) or (M, N, d) coordinates → (M, N, O) predictions (of ``members`` only, if given; ``parameters``:
        ``CoordMLPEnsemble.pass_parameters``)."""
        return self.model(x, members, parameters) + self.output_offset[members]

    def member_passes(self, rows: int) -> list[slice]:
        """The members of each forward/backward pass of a step: all at once on a GPU; on a CPU, as many as keep a
        pass's activations within ``CPU_PASS_FLOATS`` (past its caches the elementwise work slows by up to ~1.7×,
        docs/benchmarks.md), unless ``members_per_pass`` says otherwise."""
        per_pass = self.hparams.members_per_pass
        if per_pass is None:
            per_member = rows * (sum(self.model.widths) + self.model.out_features)
            per_pass = self.num_members if self.device.type != "cpu" else max(1, CPU_PASS_FLOATS // per_member)
        return [slice(i, min(i + per_pass, self.num_members)) for i in range(0, self.num_members, per_pass)]

    def setup(self, stage: str) -> None:
        """Refuse, before training starts, an ensemble that would not fit in the device's memory (naming the size)."""
        data = self.trainer.datamodule if stage == "fit" else None
        if data is None or getattr(data, "train_x", None) is None:
            return
        rows = min(data.batch_size or data.train_x.shape[-2], data.train_x.shape[-2])
        per_member = member_bytes(self.model._skeleton, rows)
        device = self.trainer.strategy.root_device
        if self.num_members * per_member > device_bytes(device):
            raise ValueError(f"the ensemble of {self.num_members} members needs ≈ {self.num_members * per_member / 2**30:.1f} "
                             f"GiB to train on {rows} points a step ({per_member / 2**30:.2f} GiB each), more than the "
                             f"{device_bytes(device) / 2**30:.1f} GiB of {device}: train at most "
                             f"{members_that_fit(per_member, device)} members at once (coordnet sweep splits a sweep "
                             "into ensembles that fit)")

    def on_fit_start(self) -> None:
        datamodule = self.trainer.datamodule
        if getattr(datamodule, "num_members", self.num_members) != self.num_members:
            raise ValueError(f"the ensemble has {self.num_members} members, its data {datamodule.num_members}")
        if self.global_step == 0:  # resumed: the offsets came back with the checkpoint
            center = torch.tensor([s["center_targets"] for s in self.settings], device=self.device)
            means = datamodule.train_y.mean(dim=1, keepdim=True)  # (M, 1, O)
            self.output_offset.copy_(torch.where(center[:, None, None], means, 0.0))

    def member_mse(self, x: Tensor, y: Tensor, members: slice = slice(None),
                   parameters: list[Tensor] | None = None) -> Tensor:
        """(M,): each member's mean squared error over its N·O values (of ``members`` only, if given)."""
        return (self(x, members, parameters) - y[members]).square().flatten(1).mean(1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """One optimiser step of every member still training; the stopping rule of the module docstring."""
        x, y = batch
        step = self.global_step
        align_logger_step(self.trainer)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        losses, total = [], 0.0
        passes = self.member_passes(x.shape[-2])
        for members in passes:
            parameters = self.model.pass_parameters(members) if len(passes) > 1 else None
            loss = self.member_mse(x, y, members, parameters)
            stopped = self.stopped_at[members]
            stopped.copy_(torch.where((stopped < 0) & ~torch.isfinite(loss), step, stopped))
            loss_sum = torch.where(stopped < 0, loss, 0.0).sum()
            self.manual_backward(loss_sum)
            if parameters is not None:
                self.model.add_gradients(members, parameters)
            losses.append(loss.detach())
            total = total + loss_sum.detach()
        losses = torch.cat(losses)
        training = self.stopped_at < 0
        if self.clipped:
            clip_member_gradients(self.parameters(), self.max_grad_norms)
        optimizer.step(active=training)
        rejected = optimizer.optimizer.rejected
        if rejected is not None:
            self.stopped_at.copy_(torch.where(rejected, step, self.stopped_at))
        self.member_losses = losses
        return total

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        every = self.trainer.log_every_n_steps
        if self.global_step % every == 0 and bool((self.stopped_at >= 0).all()):
            raise TrainingDiverged(f"every member of the ensemble has stopped (the last at step "
                                   f"{int(self.stopped_at.max())}): their losses or updates are NaN or infinite")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.test_losses = self.member_mse(x, y).detach()

    def member_psnr(self, losses: Tensor) -> Tensor:
        """(M,) PSNR in dB of (M,) losses, each with its member's data range."""
        return psnr(losses, self.data_range.to(losses))

    @torch.no_grad()
    def predict_members(self, x: Tensor, chunk_size: int = 65536) -> Tensor:
        """Every member's prediction at x ((N, d) or (M, N, d)) in chunks of points, in eval mode: (M, N, O)."""
        was_training = self.training
        self.eval()
        out = torch.cat([self(chunk) for chunk in x.split(chunk_size, dim=-2)], dim=1)
        self.train(was_training)
        return out

    def configure_optimizers(self) -> MemberOptimizer:
        cls = MEMBER_OPTIMIZERS[self.optimizer_name][0]
        return cls(self.parameters(), torch.tensor(self.lrs, device=self.device), **self.optimizer_args)

    def configure_callbacks(self) -> Sequence[Callback]:
        """``EnsembleRuns``, and an ``EnsembleNTKCallback`` in place of each plain ``NTKSpectrumCallback`` of the
        Trainer (Lightning replaces a Trainer callback by a module's callback of a subclass)."""
        from coordnet.training.ensemble_ntk import EnsembleNTKCallback
        from coordnet.training.ensemble_runs import EnsembleRuns

        plain = [c for c in self.trainer.callbacks if type(c) is NTKSpectrumCallback]
        return [*(EnsembleNTKCallback.like(c) for c in plain), EnsembleRuns()]  # the runs' writers close last
