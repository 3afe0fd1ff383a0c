"""``NTKSpectrumCallback``: the empirical NTK on a fixed probe set, measured and logged while a model trains.

At step 0 (before the first optimiser step) and every ``every_n_steps`` optimiser steps it builds
Θ = J Jᵀ of the model on the probe (``coordnet.ntk.empirical_ntk``: float64 Gram, TF32 off, the
``mode`` and ``normalization`` chosen here) and logs, at TensorBoard step = optimiser steps taken:

- ``ntk/lambda_min``, ``ntk/lambda_max``, ``ntk/condition_number``, ``ntk/trace``, ``ntk/effective_rank``,
  ``ntk/floor`` (``coordnet.ntk.spectrum``: λ_min never below the floor n·eps·λ_max);
- ``ntk/kernel_distance_init``: 1 − ⟨Θ_0, Θ_t⟩_F / (‖Θ_0‖ ‖Θ_t‖), against the step-0 kernel;
- ``ntk/kernel_velocity``: the same distance between this and the previous measurement, divided by the
  steps between them (NaN in the history and not logged at the first measurement);
- ``ntk/target_alignment``: centred kernel–target alignment with the probe's targets;
- ``ntk/trace_share/layer_l``: layer l's share of the trace (``CoordMLP`` models; l indexes ``model.linears``);
- the histogram ``ntk/log10_eigenvalues`` (eigenvalues clipped at the floor) and the figure
  ``ntk/spectrum`` (sorted spectrum, step 0 dashed, floor dotted), with a ``TensorBoardLogger``.

The scalars also go to ``<run dir>/ntk_spectrum.csv`` (``coordnet.ntk.history``), rewritten at every
measurement. The probe is ``num_points`` training points drawn once with ``seed``, spread over the grid
(``CoordDataModule.probe_indices``), and kept on the model's device.

With ``full_data_every_n_steps`` set, it also measures the ``full`` kernel over every training point that often
(from step 0), matrix-free (``coordnet.ntk.density.model_spectral_density``: Lanczos for the 32 largest
eigenvalues, stochastic Lanczos quadrature with ``full_data_probes`` probes for the rest; exact up to n = 512):
``ntk_full/lambda_max``, ``ntk_full/trace`` (exact), ``ntk_full/trace_slq``, ``ntk_full/frobenius_norm``, the
figure ``ntk_full/density`` (with ``log_figure``), and ``<run dir>/ntk_full_spectrum.csv``. At 65,536 pixels this
takes seconds on a GPU and minutes on a CPU (docs/benchmarks.md): measure rarely.

If the parameters diverge, the measurement is skipped with a warning naming the step. Training is left
as it was: the kernel is built without autograd (no ``.grad`` is touched), in eval
mode (each submodule's mode restored), inside ``torch.random.fork_rng`` (RNG states restored), and the
optimiser is never read. Only global rank zero measures. The callback's state — probe, the step-0 and
previous kernels, the history — goes into checkpoints (the two kernels: 2·8·n² bytes, n = N, or N·O in
``full`` mode), so a resumed run measures distances against its own step 0 and repeats no step; it
re-logs the restored history when it logs to a new directory, and rewrites the CSV from it either way.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from coordnet.data.base import CoordDataModule
from coordnet.ntk import empirical_ntk, find_mlp, kernel_distance, ntk_layer_diagonals, spectrum, target_alignment
from coordnet.ntk.empirical import Normalization
from coordnet.ntk.density import model_spectral_density
from coordnet.ntk.history import FULL_HISTORY_FILE, HISTORY_FILE
from coordnet.ntk.plots import density_figure, spectrum_figure
from coordnet.tables import write_csv

CallbackMode = Literal["mean", "trace", "full"]


@contextmanager
def isolated(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode and a forked RNG for the duration; each submodule's train/eval mode and the RNGs restored."""
    modes = [(m, m.training) for m in module.modules()]
    param = next(module.parameters(), None)
    cuda = [param.device] if param is not None and param.device.type == "cuda" else []
    module.eval()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        for m, training in modes:
            m.training = training


def spectrum_row(step: int, kernel: Tensor, spec, kernel_init: Tensor, previous: tuple[Tensor, int] | None,
                 probe_y: Tensor, mode: str, layers: Tensor | None) -> dict[str, float]:
    """One measurement's scalars (the module docstring lists them) from the kernel at ``step``, its ``spectrum``, the
    step-0 kernel, the previous (kernel, step) or None, the probe's targets and each layer's diagonal sum (or None)."""
    row: dict[str, float] = {"step": step}
    row.update({key: getattr(spec, key) for key in
                ("lambda_min", "lambda_max", "condition_number", "trace", "effective_rank", "floor")})
    row["kernel_distance_init"] = kernel_distance(kernel_init, kernel)
    row["kernel_velocity"] = kernel_distance(previous[0], kernel) / (step - previous[1]) if previous else math.nan
    targets = probe_y.reshape(-1) if mode == "full" else probe_y  # rows (point, output)
    row["target_alignment"] = target_alignment(kernel, targets)
    if layers is not None:
        row.update({f"trace_share/layer_{l}": share.item() for l, share in enumerate(layers / layers.sum())})
    return row


class NTKSpectrumCallback(Callback):
    """Measure the empirical NTK's spectrum on a fixed probe set during training (see the module docstring).

    Args:
        num_points: probe size N (all training points if there are fewer).
        every_n_steps: measurement period k in optimiser steps; step 0 is always measured.
        mode: ``mean`` (Σ_o Θ_oo / O, N × N; neural-tangents' convention), ``trace`` (Σ_o Θ_oo) or
            ``full`` (N·O × N·O). Equal for one output.
        normalization: ``raw`` (J Jᵀ, paper 1) or ``by_n`` (J Jᵀ / N, paper 2); κ, effective rank,
            distances and alignment do not depend on it.
        seed: seed of the probe draw.
        log_figure: also draw the ``ntk/spectrum`` figure at each measurement (its cost: docs/benchmarks.md).
        full_data_every_n_steps: also measure over every training point this often (None: never).
        full_data_probes: SLQ probes of that measurement.
    """

    def __init__(self, num_points: int = 1024, every_n_steps: int = 100, mode: CallbackMode = "mean",
                 normalization: Normalization = "raw", seed: int = 0, log_figure: bool = True,
                 full_data_every_n_steps: int | None = None, full_data_probes: int = 10) -> None:
        full_every = 1 if full_data_every_n_steps is None else full_data_every_n_steps  # None: off, and valid
        for name, value in (("num_points", num_points), ("every_n_steps", every_n_steps),
                            ("full_data_every_n_steps", full_every), ("full_data_probes", full_data_probes)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"NTKSpectrumCallback: {name} must be a positive integer, got {value!r}")
        if mode not in ("mean", "trace", "full"):
            raise ValueError(f"NTKSpectrumCallback: mode must be 'mean', 'trace' or 'full', got {mode!r}")
        if normalization not in ("raw", "by_n"):
            raise ValueError(f"NTKSpectrumCallback: normalization must be 'raw' or 'by_n', got {normalization!r}")
        self.num_points, self.every_n_steps, self.mode = num_points, every_n_steps, mode
        self.normalization, self.seed, self.log_figure = normalization, seed, log_figure
        self.full_data_every_n_steps, self.full_data_probes = full_data_every_n_steps, full_data_probes
        self.full_history: list[dict[str, float]] = []  # the full-data measurements
        self.probe_x: Tensor | None = None  # (N, d)
        self.probe_y: Tensor | None = None  # (N, O)
        self.kernel_init: Tensor | None = None
        self.kernel_prev: Tensor | None = None
        self.eigenvalues_init: Tensor | None = None
        self.history: list[dict[str, float]] = []  # one row per measurement: {"step": s, quantity: value}
        self.log_dir: str | None = None  # where the history was logged
        self.run_dir: str | None = None  # this run's directory, read in setup on every process

    @property
    def state_key(self) -> str:
        return self._generate_state_key(num_points=self.num_points, every_n_steps=self.every_n_steps,
                                        mode=self.mode, normalization=self.normalization, seed=self.seed)

    # -- Lightning hooks ------------------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # trainer.log_dir is a collective under multi-process training: every process must ask, so here
        self.run_dir = trainer.log_dir

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self.probe_x is None:
            self.probe_x, self.probe_y = self.draw_probe(trainer.datamodule)
        device = pl_module.device
        self.probe_x, self.probe_y = self.probe_x.to(device), self.probe_y.to(device)
        if self.kernel_init is not None:
            self.kernel_init, self.kernel_prev = self.kernel_init.to(device), self.kernel_prev.to(device)
        if self.history:  # restored from a checkpoint
            if self.log_dir != self.run_dir:  # resumed into a new run directory: the history goes there too
                for row in self.history:
                    self._log_scalars(trainer, row)
                for row in self.full_history:
                    self._log_scalars(trainer, row, "ntk_full")
                self.log_dir = self.run_dir
            self._write_csv()  # in the same directory, drops rows the interrupted run wrote past the checkpoint

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._maybe_measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        self._maybe_measure(trainer, pl_module)

    def state_dict(self) -> dict:
        if self.probe_x is None:
            return {}
        cpu = lambda t: None if t is None else t.detach().cpu()  # noqa: E731
        return {"probe_x": cpu(self.probe_x), "probe_y": cpu(self.probe_y), "kernel_init": cpu(self.kernel_init),
                "kernel_prev": cpu(self.kernel_prev), "eigenvalues_init": cpu(self.eigenvalues_init),
                "history": [dict(row) for row in self.history], "log_dir": self.log_dir,
                "full_history": [dict(row) for row in self.full_history]}

    def load_state_dict(self, state_dict: dict) -> None:
        for key, value in state_dict.items():
            setattr(self, key, value)

    def draw_probe(self, datamodule) -> tuple[Tensor, Tensor]:
        """(probe points (N, d), their targets (N, O)): the data module's ``probe_indices`` of its training split."""
        if not isinstance(datamodule, CoordDataModule):
            raise ValueError("NTKSpectrumCallback needs a CoordDataModule to draw its probe points from, "
                             f"got {type(datamodule).__name__}")
        index = datamodule.probe_indices(self.num_points, self.seed).to(datamodule.train_x.device)
        return datamodule.train_x[index], datamodule.train_y[index]

    # -- measuring ------------------------------------------------------------------------------------

    def _maybe_measure(self, trainer: Trainer, pl_module: LightningModule) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero:
            return
        if self.full_data_every_n_steps and step % self.full_data_every_n_steps == 0 \
                and not (self.full_history and self.full_history[-1]["step"] >= step):
            self.measure_full_data(trainer, pl_module)
        if step % self.every_n_steps:
            return
        if self.history and self.history[-1]["step"] >= step:  # measured already (e.g. gradient accumulation)
            return
        self.measure(trainer, pl_module)

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float] | None:
        """Measure the NTK at the current step, log it and append it to the history; returns the row.

        A kernel with non-finite entries (the parameters diverged) is not measured: a warning names the step
        and None is returned, so a diverging run reports its own failure rather than a callback error.
        """
        step = trainer.global_step
        with isolated(pl_module):
            kernel = self.finite_kernel(empirical_ntk(pl_module, self.probe_x, mode=self.mode,
                                                      normalization=self.normalization), step)
            if kernel is None:
                return None
            spec = spectrum(kernel)
            layers = (ntk_layer_diagonals(pl_module, self.probe_x).sum(1)
                      if find_mlp(pl_module) is not None else None)
        if self.kernel_init is None:
            self.kernel_init, self.eigenvalues_init = kernel, spec.eigenvalues
        previous = (self.kernel_prev, self.history[-1]["step"]) if self.history else None
        row = spectrum_row(step, kernel, spec, self.kernel_init, previous, self.probe_y, self.mode, layers)
        self.kernel_prev = kernel
        self.history.append(row)
        self.log_dir = self.run_dir
        self._log_scalars(trainer, row)
        self._log_tensorboard(trainer, spec, step, self.eigenvalues_init)
        self._write_csv()
        return row

    @staticmethod
    def finite_kernel(kernel: Tensor, step: int) -> Tensor | None:
        """``kernel``, or None with a warning naming ``step`` when it has NaN or infinite entries."""
        if torch.isfinite(kernel).all():
            return kernel
        rank_zero_warn(f"NTKSpectrumCallback: step {step}: the NTK has NaN or infinite entries (have the parameters "
                       "diverged?); this measurement is skipped")
        return None

    def measure_full_data(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float] | None:
        """Measure the ``full`` kernel over every training point, matrix-free, log it and keep it; the row."""
        step = trainer.global_step
        with isolated(pl_module):
            if not all(torch.isfinite(p).all() for p in pl_module.parameters()):
                rank_zero_warn(f"NTKSpectrumCallback: step {step}: the parameters are NaN or infinite; the "
                               "full-data measurement is skipped")
                return None
            density = model_spectral_density(pl_module, trainer.datamodule.train_x, self.normalization,
                                             num_probes=self.full_data_probes)
        row = {"step": step, "lambda_max": density.lambda_max, "trace": density.exact_trace,
               "trace_slq": density.trace, "frobenius_norm": density.frobenius_norm}
        self.full_history.append(row)
        self.log_dir = self.run_dir
        self._log_scalars(trainer, row, "ntk_full")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger) and self.log_figure:
                title = f"NTK (full, {self.normalization}) on all {density.n} outputs at step {step}"
                logger.experiment.add_figure("ntk_full/density", density_figure(density, title), step)
        self._write_csv()
        return row

    # -- writing --------------------------------------------------------------------------------------

    def _log_scalars(self, trainer: Trainer, row: dict[str, float], prefix: str = "ntk") -> None:
        metrics = {f"{prefix}/{key}": value for key, value in row.items() if key != "step" and not math.isnan(value)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=row["step"])

    def _log_tensorboard(self, trainer: Trainer, spec, step: int, eigenvalues_init: Tensor) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                self._log_spectrum(logger.experiment, spec, step, eigenvalues_init)

    def _log_spectrum(self, writer, spec, step: int, eigenvalues_init: Tensor) -> None:
        """The eigenvalue histogram and, with ``log_figure``, the spectrum figure, into a ``SummaryWriter``."""
        clip = max(spec.floor, torch.finfo(torch.float64).tiny)
        writer.add_histogram("ntk/log10_eigenvalues", spec.eigenvalues.clamp_min(clip).log10().cpu(), step)
        if self.log_figure:
            relation = "=" if spec.lambda_min_reliable else "≥"  # λ_min at the floor: κ is a lower bound
            title = f"NTK ({self.mode}, {self.normalization}) at step {step}: κ {relation} {spec.condition_number:.3g}"
            writer.add_figure("ntk/spectrum", spectrum_figure(spec.eigenvalues, spec.floor, title, eigenvalues_init),
                              step)

    def _write_csv(self) -> None:
        if self.run_dir is not None:
            Path(self.run_dir).mkdir(parents=True, exist_ok=True)
            write_csv(Path(self.run_dir) / HISTORY_FILE, self.history)
            if self.full_history:
                write_csv(Path(self.run_dir) / FULL_HISTORY_FILE, self.full_history)
