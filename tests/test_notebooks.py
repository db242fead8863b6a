"""The teaching notebooks in ``examples/`` run from top to bottom without errors.

Each notebook is executed with nbclient in a fresh ``python3`` kernel (ipykernel from the same
environment as the tests), with ``examples/`` as its working directory and
``LMGYM_NOTEBOOK_FAST=1``, which the notebooks read to shrink their training budgets. The notebooks
contain their own ``assert`` cells (e.g. the oracle beats random, PPO improves the toy task), so an
API change that breaks a lesson fails here.

The quick notebooks run in the default suite; the training-heavy ones are marked ``slow``::

    pytest tests/test_notebooks.py                          # 01, 02, 03 (well under a minute each)
    pytest -m slow tests/test_notebooks.py                  # 04-07 only
    pytest -m "slow or not slow" tests/test_notebooks.py    # all seven
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUICK = ["01_quickstart.ipynb", "02_scorers.ipynb", "03_ppo_from_the_inside.ipynb"]
SLOW = ["04_rlhf_pipeline.ipynb", "05_benchmark_sb3.ipynb", "06_rlhf_from_preferences.ipynb", "07_offline_rl.ipynb"]
NEEDS = {  # optional packages a notebook imports beyond the core install
    "01_quickstart.ipynb": ["matplotlib"],
    "02_scorers.ipynb": ["matplotlib", "pandas"],
    "03_ppo_from_the_inside.ipynb": ["matplotlib", "pandas", "torch", "accelerate"],
    "04_rlhf_pipeline.ipynb": ["matplotlib", "pandas", "torch", "accelerate"],
    "05_benchmark_sb3.ipynb": ["matplotlib", "pandas", "torch", "accelerate", "stable_baselines3"],
    "06_rlhf_from_preferences.ipynb": ["matplotlib", "pandas", "torch", "accelerate"],
    "07_offline_rl.ipynb": ["matplotlib", "pandas", "torch", "accelerate"],
}
CELL_TIMEOUT = 600  # seconds per cell; generous for busy CI machines


def run_notebook(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute ``examples/<name>`` with the fast budgets; raise on the first failing cell."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for module in NEEDS[name]:
        pytest.importorskip(module)
    monkeypatch.setenv("LMGYM_NOTEBOOK_FAST", "1")  # the kernel inherits this process's environment
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on the first error


@pytest.mark.parametrize("name", QUICK)
def test_quick_notebook_runs(name, monkeypatch):
    run_notebook(name, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_training_notebook_runs(name, monkeypatch):
    run_notebook(name, monkeypatch)


def test_every_notebook_is_tested_and_listed():
    found = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
    assert found == sorted(QUICK + SLOW)
    readme = (EXAMPLES / "README.md").read_text()
    for name in found:
        assert name in readme, f"examples/README.md does not list {name}"


@pytest.mark.parametrize("name", QUICK + SLOW)
def test_notebooks_are_stored_without_outputs(name):
    """Notebooks live in git stripped: no outputs, no execution counts (clean diffs, no stale numbers)."""
    notebook = json.loads((EXAMPLES / name).read_text())
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{name} cell {i} has outputs; clear them before committing"
            assert cell.get("execution_count") is None, f"{name} cell {i} has an execution count"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
