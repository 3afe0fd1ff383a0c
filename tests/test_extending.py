"""Adding an activation is one class and one registry line (tests/throwaway_activation.py): with no other edit
it trains by name from the CLI, and the exact NTK, the infinite-width NTK, the NTK callback and the property
tests all work for it."""

import math
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import test_activations as properties
from coordnet.cli import main
from coordnet.experiments.study import load_study, run_study
from coordnet.models import ACTIVATIONS, CoordMLP, get_activation
from coordnet.ntk import analytic_ntk, empirical_ntk
from coordnet.tables import read_csv_columns

TESTS = Path(__file__).parent


@pytest.fixture
def throwaway():
    """The throw-away activation, registered for one test only."""
    import throwaway_activation

    ACTIVATIONS["throwaway"] = throwaway_activation.Throwaway
    yield throwaway_activation.Throwaway
    ACTIVATIONS.pop("throwaway")


def test_the_property_tests_run_over_a_newly_registered_activation():
    code = ("import sys, pytest, throwaway_activation; "
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-k', 'throwaway', 'test_activations.py']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout, done.stdout  # derivative, quasi-Monte Carlo duals, EOC, init, shape, config


def test_a_registered_activation_trains_by_name_from_the_cli_with_the_ntk_callback(throwaway, tiny_config, tmp_path):
    text = tiny_config.read_text().replace("{class_path: Sine, init_args: {omega0: 30.0}}", "throwaway")
    tiny_config.write_text(text.replace("init: siren", "init: auto") + "  callbacks:\n"
                           "    - class_path: NTKSpectrumCallback\n      init_args: {num_points: 64, every_n_steps: 25}\n")
    main(["fit", "--config", str(tiny_config)])
    run = tmp_path / "runs/tiny/version_0"
    history = read_csv_columns(run / "ntk_spectrum.csv")
    assert history["step"] == [0.0, 25.0, 50.0]
    assert all(math.isfinite(k) and k > 1 for k in history["condition_number"])
    checkpoint = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["activation"] == "throwaway"


def test_a_registered_activation_has_the_exact_and_the_infinite_width_ntk(throwaway):
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    small = CoordMLP(2, 2, 24, 2, "throwaway", bias=True, bias_std=0.3)
    torch.testing.assert_close(empirical_ntk(small, x), empirical_ntk(small, x, method="jacobian"))
    errors = []
    for seed in range(3):
        torch.manual_seed(seed)
        wide = CoordMLP(2, 1, 4096, 2, "throwaway", bias=True, bias_std=0.5)
        analytic = analytic_ntk(wide, x, mode="mean")
        errors.append(((empirical_ntk(wide, x, mode="mean") - analytic).norm() / analytic.norm()).item())
    assert sum(errors) / len(errors) <= 3 / math.sqrt(4096), errors


def code_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_worked_examples_in_docs_extending_run(tmp_path, monkeypatch):
    """docs/extending.md's Sinc passes the activation property tests; its study runs --quick through the runner."""
    sinc_code, study_code = code_blocks(TESTS.parent / "docs" / "extending.md")
    activations = types.ModuleType("sinc_example")
    monkeypatch.setitem(sys.modules, "sinc_example", activations)
    try:
        exec(compile(sinc_code, "docs/extending.md", "exec"), activations.__dict__)
        sinc = get_activation("sinc", c=0.5)
        for check in (properties.test_derivative_matches_autograd_everywhere_including_zero,
                      properties.test_duals_agree_with_monte_carlo, properties.test_default_init_builds_a_network,
                      properties.test_its_config_rebuilds_it, properties.test_edge_of_chaos_where_defined):
            check(sinc)
        module = types.ModuleType("width_sweep")
        exec(compile(study_code, "docs/extending.md", "exec"), module.__dict__)
        monkeypatch.setitem(sys.modules, "width_sweep", module)
        records, summary = run_study(load_study("width_sweep"), quick=True, out=tmp_path, progress=False)
    finally:
        ACTIVATIONS.pop("sinc", None)
    assert [r["activation"] for r in records] == ["relu", "sine", "sinc"]
    assert all(r["lambda_min"] > 0 for r in records) and "| sinc | 64 |" in summary
    assert {p.name for p in tmp_path.iterdir()} == {"records.jsonl", "records.csv", "width_sweep.png", "summary.md"}


def test_the_module_and_the_network_share_one_default_init():
    """--model.activation relu used to fail on CoordNetModule's default init (siren) while CoordMLP's was he."""
    from coordnet.training import CoordNetModule

    for activation, init in (("relu", "he"), ("sine", "siren"), ("abs", "eoc"), ("cos", "he")):
        assert CoordNetModule(activation=activation).model.init == CoordMLP(activation=activation).init == init
