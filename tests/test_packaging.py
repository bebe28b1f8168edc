"""Packaging edges: type markers, versions, and the message when jax is missing."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

import rootsolve

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.parametrize("package", ["rootsolve", "rootsolve_optim"])
def test_packages_are_marked_typed(package):
    assert (SRC / package / "py.typed").is_file()
    # and setuptools ships the marker
    pyproject = (SRC.parent / "pyproject.toml").read_text()
    assert f'{package} = ["py.typed"]' in pyproject


def test_versions_come_from_the_installed_distribution():
    pytest.importorskip("jax")
    import rootsolve_optim

    assert rootsolve.__version__ == importlib.metadata.version("rootsolve")
    assert rootsolve_optim.__version__ == rootsolve.__version__


def _without(module: str) -> subprocess.CompletedProcess:
    code = f"import sys; sys.modules[{module!r}] = None; import rootsolve_optim"
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("module", ["jax", "optax"])
def test_import_without_jax_says_what_to_install(module):
    proc = _without(module)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: rootsolve_optim needs jax and optax"), proc.stderr
    assert "pip install 'rootsolve[jax]'" in last and module in last
