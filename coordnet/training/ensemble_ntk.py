"""``EnsembleNTKCallback``: the NTK spectrum callback for an ``EnsembleModule``, each member into its own run.

At the steps ``NTKSpectrumCallback`` measures, it builds every member's kernel on the probe in one batched call
(``empirical_ntk`` of the ensemble: (M, n, n), or (M, n·O, n·O) in ``full`` mode, equal to M single calls) and
logs member m's ``ntk/…`` scalars, eigenvalue histogram and figure into member m's run (``EnsembleRuns``), its
rows into ``<run dir>/<member>/ntk_spectrum.csv``, and ``final/lambda_min``, ``final/kappa_init`` and
``final/kappa_end`` when training ends. The probe is the same points of every member's training split (or of each
member's own points, when they differ). ``history`` rows carry the member's index under ``member``.

An ``EnsembleModule`` puts one in place of a plain ``NTKSpectrumCallback`` given to its Trainer (same settings),
so a config's callback works for a sweep unchanged. Not supported: the full-data measurement.
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import LightningModule, Trainer
from torch import Tensor

from coordnet.ntk import spectrum
from coordnet.ntk.empirical import (diagonals_from_factors, ensemble_kernel_from_factors, ensemble_layer_factors,
                                    find_ensemble)
from coordnet.ntk.history import HISTORY_FILE
from coordnet.tables import write_csv
from coordnet.training.ensemble_runs import EnsembleRuns
from coordnet.training.ntk_callback import NTKSpectrumCallback, isolated, spectrum_row

FINAL_TAGS = ("final/lambda_min", "final/kappa_init", "final/kappa_end")


class EnsembleNTKCallback(NTKSpectrumCallback):
    """``NTKSpectrumCallback`` for every member of an ensemble (see the module docstring); the same arguments."""

    @classmethod
    def like(cls, callback: NTKSpectrumCallback) -> EnsembleNTKCallback:
        """An ensemble callback with ``callback``'s settings."""
        return cls(callback.num_points, callback.every_n_steps, callback.mode, callback.normalization, callback.seed,
                   callback.log_figure, callback.full_data_every_n_steps, callback.full_data_probes)

    def draw_probe(self, datamodule) -> tuple[Tensor, Tensor]:
        """(probe points (n, d) or (M, n, d), their targets (M, n, O))."""
        if self.full_data_every_n_steps is not None:
            raise ValueError("NTKSpectrumCallback: full_data_every_n_steps is not supported for an ensemble; "
                             "measure the full data of a member with a single run")
        index = datamodule.probe_indices(self.num_points, self.seed).to(datamodule.train_y.device)
        return datamodule.train_x[..., index, :], datamodule.train_y[:, index]

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> list[dict[str, float]] | None:
        """Measure every member's NTK at the current step, log each into its run; the rows (None if skipped)."""
        step = trainer.global_step
        with isolated(pl_module):
            factors = ensemble_layer_factors(find_ensemble(pl_module), self.probe_x)  # the kernel's and the layers'
            kernels = self.finite_kernel(ensemble_kernel_from_factors(factors, None, self.mode, self.normalization),
                                         step)
            if kernels is None:
                return None
            layers = [diagonals_from_factors(f).sum(1) for f in factors]
            spectra = [spectrum(kernel) for kernel in kernels]
        if self.kernel_init is None:
            self.kernel_init = kernels
            self.eigenvalues_init = torch.stack([spec.eigenvalues for spec in spectra])
        previous = (self.history[-1]["step"]) if self.history else None
        rows = [spectrum_row(step, kernels[m], spec, self.kernel_init[m],
                             (self.kernel_prev[m], previous) if previous is not None else None,
                             self.probe_y[m], self.mode, layers[m]) | {"member": m} for m, spec in enumerate(spectra)]
        self.kernel_prev = kernels
        self.history += rows
        self.log_dir = self.run_dir
        runs = _runs(trainer)
        for m, (row, spec) in enumerate(zip(rows, spectra)):
            self._log_scalars(trainer, row)
            self._log_spectrum(runs.writer(trainer, pl_module, m), spec, step, self.eigenvalues_init[m])
        self._write_csv()
        return rows

    def _log_scalars(self, trainer: Trainer, row: dict[str, float], prefix: str = "ntk") -> None:
        writer = _runs(trainer).writer(trainer, trainer.lightning_module, int(row["member"]))
        for key, value in row.items():
            if key not in ("step", "member") and value == value:  # NaN: the first velocity, not logged
                writer.add_scalar(f"{prefix}/{key}", value, row["step"])

    def member_rows(self, m: int) -> list[dict[str, float]]:
        """Member m's measurements, without the ``member`` key."""
        return [{k: v for k, v in row.items() if k != "member"} for row in self.history if row["member"] == m]

    def _write_csv(self) -> None:
        if self.run_dir is None or not self.history:
            return
        module = self._module
        for m, name in enumerate(module.names):
            directory = Path(self.run_dir) / name
            directory.mkdir(parents=True, exist_ok=True)
            write_csv(directory / HISTORY_FILE, self.member_rows(m))

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._module = pl_module

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero or not self.history:
            return
        runs = _runs(trainer)
        for m in range(pl_module.num_members):
            rows = self.member_rows(m)
            values = (rows[-1]["lambda_min"], rows[0]["condition_number"], rows[-1]["condition_number"])
            for tag, value in zip(FINAL_TAGS, values):
                runs.writer(trainer, pl_module, m).add_scalar(tag, value, trainer.global_step)


def _runs(trainer: Trainer) -> EnsembleRuns:
    runs = next((c for c in trainer.callbacks if isinstance(c, EnsembleRuns)), None)
    if runs is None:
        raise ValueError("EnsembleNTKCallback logs into the members' runs: it needs an EnsembleModule's EnsembleRuns")
    return runs
