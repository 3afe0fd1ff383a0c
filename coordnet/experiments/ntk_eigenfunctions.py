"""The NTK's top eigenfunctions over every pixel of an image, for a few shipped configs at initialisation.

Each job builds one shipped config's network (seed 0, as ``coordnet fit`` would) and computes the K largest
eigenpairs of its raw NTK on all RESOLUTION² pixels of IMAGE by matrix-free Lanczos (``kernel_eigenfunctions``),
with the centred image's energy fraction in their span. The eigenvectors are kept as ``<out>/<config>.npy``
(float32, (pixels, K)) and drawn as images, one row per network.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from coordnet.data import ImageDataModule
from coordnet.experiments.config_runs import CONFIG_DIR
from coordnet.experiments.reporting import markdown_table
from coordnet.ntk.eigenfunctions import kernel_eigenfunctions

NAME = "ntk_eigenfunctions"
CONFIGS = {"SIREN (camera_sine)": "camera_sine.yaml", "ReLU + FF (camera_relu_ff)": "camera_relu_ff.yaml",
           "cos(5·) (camera_cos)": "camera_cos.yaml"}
IMAGE = "camera"
RESOLUTION = 128
K = 16


def jobs(quick: bool, out: Path) -> list[dict]:
    resolution, k = (32, 4) if quick else (RESOLUTION, K)
    return [{"network": name, "config": config, "image": IMAGE, "resolution": resolution, "k": k,
             "vectors": str(out / f"{Path(config).stem}.npy")} for name, config in CONFIGS.items()]


def run(job: dict) -> dict:
    from coordnet.cli import parse_config
    from coordnet.training.ensemble import member_network, member_settings

    settings = member_settings(parse_config(["--config", str(CONFIG_DIR / job["config"])])["model"])
    network = member_network(settings, seed=0)
    data = ImageDataModule(job["image"], job["resolution"])
    data.setup()
    start = time.perf_counter()
    found = kernel_eigenfunctions(network, data.train_x, job["k"], data.train_y)
    seconds = time.perf_counter() - start
    Path(job["vectors"]).parent.mkdir(parents=True, exist_ok=True)
    np.save(job["vectors"], found.vectors.float().numpy())
    return {"eigenvalues": found.eigenvalues.tolist(), "energy_fraction": found.energy_fraction,
            "seconds": seconds}


def figure(records: list[dict]) -> Figure:
    """One row per network, one column per eigenfunction (largest first), each on the image grid, diverging
    colours centred at 0."""
    k, side = records[0]["k"], records[0]["resolution"]
    fig = Figure(figsize=(1.1 * k, 1.35 * len(records) + 0.4), layout="constrained")
    axes = fig.subplots(len(records), k, squeeze=False)
    for row, record in zip(axes, records):
        vectors = np.load(record["vectors"])
        for i, ax in enumerate(row):
            image = vectors[:, i].reshape(side, side)
            bound = np.abs(image).max()
            ax.imshow(image, cmap="RdBu_r", vmin=-bound, vmax=bound)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"λ{i + 1} = {record['eigenvalues'][i]:.2g}", fontsize=6)
        row[0].set_ylabel(record["network"], fontsize=7)
    fig.suptitle(f"Top {k} NTK eigenfunctions over {records[0]['image']} {side}² at initialisation", fontsize=9)
    return fig


def report(records: list[dict]) -> tuple[Figure, str]:
    first = records[0]
    rows = [[r["network"], r["eigenvalues"][0], r["eigenvalues"][-1], r["eigenvalues"][0] / r["eigenvalues"][-1],
             r["energy_fraction"], r["seconds"]] for r in records]
    return figure(records), "\n".join([
        f"# The NTK's top {first['k']} eigenfunctions over {first['image']} {first['resolution']}² at init",
        "",
        "Raw NTK on every pixel, matrix-free Lanczos (ARPACK, tolerance 1e-8), seed 0; energy = the centred image's "
        f"share in the span of the top {first['k']}.",
        "",
        markdown_table(["network", "λ_1", f"λ_{first['k']}", f"λ_1 / λ_{first['k']}", "energy fraction",
                        "seconds"], rows),
    ])
