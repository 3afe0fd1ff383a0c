"""``CoordNetModule``: the LightningModule that fits a ``CoordMLP`` to a coordinate data module.

The prediction is `f(x) = MLP(x) + c`, with c a fixed (not trained) per-channel offset set to the mean
training target when fitting starts (``center_targets``; SIREN rescales images to [−1, 1] instead).
Without it an Adam step moves the output bias by about lr, so at lr 1e-4 the ~0.5 offset of an image
takes thousands of steps (docs/benchmarks.md, "Fitting camera 128×128", measures the difference).
The offset adds nothing to the NTK (it has no parameters).

Loss: MSE, `(1/(N·O)) Σ (f(x) − y)²` over the batch. PSNR: `10·log10(R²/MSE)` with R the data's
range (1 for images in [0, 1]). Logged at TensorBoard step s = the number of optimiser steps the
model has taken: ``train/loss`` and ``train/psnr`` (the batch seen at that step, before its update),
``test/loss`` and ``test/psnr`` when the data has a test split, and a reconstruction of the whole
grid every ``reconstruction_every_n_steps`` steps.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, LightningModule
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from coordnet.data.base import CoordDataModule
from coordnet.models import Activation, CoordMLP, Encoding
from coordnet.models.config import init_config
from coordnet.models.mlp import Init, Parametrization, physical_memory
from coordnet.training.callbacks import ReconstructionLogger
from coordnet.training.metrics import psnr

# CoordMLP's arguments, which CoordNetModule passes on by name from its own.
NETWORK_ARGUMENTS = tuple(inspect.signature(CoordMLP).parameters)


def align_logger_step(trainer) -> None:
    """Set the Trainer's logger step counter to the optimiser steps taken. Lightning adds one to it when it restores
    a checkpoint written at the end of a fit, so an extended run would log at step s + 1 and skip the steps its
    log_every_n_steps asks for; coordnet's modules take exactly one optimiser step per batch, so the counts are equal."""
    loop = trainer.fit_loop.epoch_loop
    if loop._batches_that_stepped != trainer.global_step:
        loop._batches_that_stepped = trainer.global_step


class CoordNetModule(LightningModule):
    """Fit a coordinate MLP to a data module's points with the mean squared error.

    ``in_features``, ``out_features`` and ``data_range`` come from the data module (the CLI links them); the
    rest builds the ``CoordMLP`` (its docstring states the maths) and its optimiser.

    Args:
        in_features: coordinate dimension d (from the data: 2 for images, 1 for signals).
        out_features: channels O of the signal (from the data: 1 grey, 3 RGB, 4 RGBA).
        hidden: width of every hidden layer, or the list of widths ([4096]: one wide layer).
        depth: number of hidden layers when hidden is one width.
        activation: a name (sine, cos, relu, abs, abrelu, gaussian) or a class config such as {class_path: Cos,
            init_args: {s: 5.0}}.
        init: auto, the activation's own (sine siren, cos and relu he, abs and abrelu eoc); he N(0, 2/fan_in); standard N(0, weight_var/fan_in); eoc N(0, 1/((a²+b²)·fan_in)) for a·x + b·|x|;
            siren U(±1/fan_in) first, U(±√(6/fan_in)/ω0) after.
        parametrization: standard, or ntk (weights N(0, 1), the forward scaled by σ/√fan_in).
        bias: whether the layers have biases.
        encoding: a fixed input encoding built from in_features, e.g. {class_path: FourierFeatures, init_args:
            {num_features: 256, sigma: 2.5}}, or null.
        weight_var: β² of init standard.
        bias_std: std of the biases at init (he, standard, eoc); the bias multiplier under parametrization ntk.
        first_layer_fan_in: false drops the first layer's 1/fan_in (paper 2's first layer).
        lr: learning rate of the default optimiser, Adam.
        optimizer: a torch.optim class config to use instead of Adam(lr).
        lr_scheduler: a torch.optim.lr_scheduler class config; stepped every training step.
        data_range: peak-to-peak range R of the targets in PSNR = 10·log10(R²/MSE) (from the data).
        reconstruction_every_n_steps: log the whole-grid reconstruction this often (null: never).
        center_targets: set a fixed output offset to the mean training target when fitting starts.
        gradient_clip_val: clip the gradient's global L2 norm to this before each step (null: no clipping);
            use it instead of trainer.gradient_clip_val, which Lightning refuses because this module takes its
            optimiser steps itself.
    """

    def __init__(
        self,
        in_features: int = 2,
        out_features: int = 1,
        hidden: int | list[int] = 256,
        depth: int = 3,
        activation: Activation | str = "sine",
        init: Init = "auto",
        parametrization: Parametrization = "standard",
        bias: bool = True,
        encoding: Callable[[int], Encoding] | None = None,
        weight_var: float = 1.0,
        bias_std: float = 0.0,
        first_layer_fan_in: bool = True,
        lr: float = 1e-4,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        data_range: float = 1.0,
        reconstruction_every_n_steps: int | None = 250,
        center_targets: bool = True,
        gradient_clip_val: float | None = None,
    ) -> None:
        super().__init__()
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        if reconstruction_every_n_steps is not None and reconstruction_every_n_steps <= 0:
            raise ValueError(f"reconstruction_every_n_steps must be > 0 or null, got {reconstruction_every_n_steps!r}")
        if gradient_clip_val is not None and not (math.isfinite(gradient_clip_val) and gradient_clip_val > 0):
            raise ValueError(f"gradient_clip_val must be a finite number > 0 or null, got {gradient_clip_val!r}")
        network = {name: value for name, value in locals().items() if name in NETWORK_ARGUMENTS}
        network["encoding"] = encoding(in_features) if encoding is not None else None
        with warnings.catch_warnings():  # the hyperparameters keep the activation's config, not the object
            warnings.filterwarnings("ignore", "Attribute 'activation' is an instance of `nn.Module`")
            # The optimiser and scheduler builders are often lambdas, which cannot be pickled; the run's
            # config.yaml records them instead.
            self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.model = CoordMLP(**network)
        self._keep_configs_in_hparams()
        self.data_range = data_range
        self.register_buffer("output_offset", torch.zeros(out_features))
        self.automatic_optimization = False  # training_step takes the optimiser step itself

    def _keep_configs_in_hparams(self) -> None:
        """Record the activation and encoding as ``{class_path, init_args}`` configs (the CLI already does), so
        that checkpoints hold no pickled objects: ``torch.load``'s default ``weights_only=True`` reads them, and
        ``load_from_checkpoint`` rebuilds both through jsonargparse, as for a CLI checkpoint."""
        if isinstance(self.hparams.activation, nn.Module):
            self.hparams.activation = init_config(self.model.activation)
        if self.hparams.encoding is not None and not isinstance(self.hparams.encoding, dict):
            self.hparams.encoding = init_config(self.model.encoding, skip=("in_features",))
        self.hparams.setdefault("_instantiator", "pytorch_lightning.cli.instantiate_module")

    def __setattr__(self, name: str, value: object) -> None:
        # Lightning sets _current_fx_name around each of the ~30 hook calls of a step; nn.Module's checks
        # for parameters, buffers and submodules are a measurable part of a small step (docs/benchmarks.md).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + self.output_offset

    def ntk_model(self) -> CoordMLP:
        """The network whose NTK this module has: its output is the MLP's plus a constant offset."""
        return self.model

    def setup(self, stage: str) -> None:
        if stage != "fit":
            return
        # Adam trains with the parameters, their gradients and two moments: 4 copies, on the Trainer's device
        size = 4 * sum(p.numel() * p.element_size() for p in self.parameters())
        device = self.trainer.strategy.root_device
        available = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" \
            else physical_memory()
        if size > available:
            raise ValueError(f"model: hidden {self.hparams.hidden} × depth {self.hparams.depth} needs ≈ "
                             f"{size / 2**30:.1f} GiB to train with Adam (parameters, gradients, two moments), more "
                             f"than the {available / 2**30:.1f} GiB of {device}")

    def on_fit_start(self) -> None:
        if self.trainer.log_every_n_steps < 1:
            raise ValueError(f"trainer.log_every_n_steps must be ≥ 1, got {self.trainer.log_every_n_steps}")
        datamodule = self.trainer.datamodule
        # global_step > 0: resumed, the offset came back with the checkpoint.
        if self.hparams.center_targets and self.global_step == 0 and isinstance(datamodule, CoordDataModule):
            self.output_offset.copy_(datamodule.train_y.mean(dim=0))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Checkpoints from before training_step took its own steps (Lightning's automatic optimisation) count
        # them in the automatic loop's progress; without moving the count a resumed fit would restart at step 0.
        loops = checkpoint.get("loops", {}).get("fit_loop", {})
        automatic = loops.get("epoch_loop.automatic_optimization.optim_progress")
        manual = loops.get("epoch_loop.manual_optimization.optim_step_progress")
        if automatic and manual and manual["total"]["completed"] == 0:
            loops["epoch_loop.manual_optimization.optim_step_progress"] = copy.deepcopy(automatic["optimizer"]["step"])

    def _metrics(self, loss: Tensor, stage: str) -> dict[str, Tensor]:
        return {f"{stage}/loss": loss.detach(), f"{stage}/psnr": psnr(loss.detach(), self.data_range)}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """One optimiser step on the batch, written out (Lightning's manual optimisation): zero_grad, forward,
        MSE, backward, step, then the scheduler, if any. Lightning's automatic optimisation wraps the same
        work in a closure and more hook calls: ~5% of a 64² step on a CPU (docs/benchmarks.md)."""
        x, y = batch
        step = self.global_step  # optimiser steps taken before this one: the step train/* is logged at
        align_logger_step(self.trainer)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        loss = F.mse_loss(self(x), y)
        self.manual_backward(loss)
        optimizer.step()  # clips first if asked (on_before_optimizer_step)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            self._step_scheduler(scheduler, step)
        # Only on the steps the Trainer writes logs: each `self.log` call costs ~1 ms of Lightning
        # bookkeeping, as much as a whole step of a small network on a CPU (docs/benchmarks.md).
        if (step + 1) % self.trainer.log_every_n_steps == 0:
            self.log_dict(self._metrics(loss, "train"))  # the ProgressBar callback shows them
        return loss.detach()

    @staticmethod
    def _step_scheduler(scheduler, step: int) -> None:
        """``scheduler.step()`` after optimiser step ``step`` (0-based), with a bad setting (a zero ``step_size``, a NaN
        ``gamma``) named as one."""
        def named() -> str:
            settings = ", ".join(f"{k}={v}" for k, v in scheduler.state_dict().items()
                                 if not k.startswith("_") and isinstance(v, (int, float)) and k != "last_epoch")
            return f"model.lr_scheduler {type(scheduler).__name__}({settings})"

        try:
            scheduler.step()
        except (ZeroDivisionError, ValueError, OverflowError) as err:
            raise ValueError(f"{named()}: stepping it after {step + 1} steps failed ({err}); check its settings") \
                from None
        lrs = scheduler.get_last_lr()
        if not all(math.isfinite(lr) and lr >= 0 for lr in lrs):
            raise ValueError(f"{named()}: the learning rate became {lrs[0]} after {step + 1} steps; check its settings")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        # Logged at step = optimiser steps taken, like the training metrics; Lightning's own
        # validation logging would stamp them one step earlier.
        x, y = batch
        metrics = self._metrics(F.mse_loss(self(x), y), "test")
        self.log_dict(metrics, logger=False, prog_bar=True)
        for logger in self.loggers:
            logger.log_metrics({k: v.item() for k, v in metrics.items()}, step=self.global_step)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``test/loss`` and ``test/psnr`` of the data module's test split (every point under ``memorize``)."""
        x, y = batch
        self.log_dict(self._metrics(F.mse_loss(self(x), y), "test"))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Called inside optimizer.step() after mixed precision has unscaled the gradients, so the norm is the true one
        if self.hparams.gradient_clip_val is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.gradient_clip_val)

    def configure_optimizers(self):
        params = self.parameters()
        opt = self.optimizer(params) if self.optimizer else torch.optim.Adam(params, self.hparams.lr)
        if self.lr_scheduler is None:
            return opt
        # stepped in training_step; "interval" tells LearningRateMonitor to log it every step
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.lr_scheduler(opt), "interval": "step"}}

    def configure_callbacks(self) -> Sequence[Callback]:

        every = self.hparams.reconstruction_every_n_steps
        return [ReconstructionLogger(every)] if every else []
