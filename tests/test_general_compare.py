"""``python -m rootsolve compare --general``: general problems, peers and what is skipped."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from rootsolve import bench


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_general_problem_reference_is_the_principal_inverse_root(dtype):
    prob = bench.general_problem(12, 3, 1e3, dtype=dtype, seed=1)
    assert prob.family == "general" and prob.a.dtype == np.dtype(dtype)
    lam = np.linalg.eigvals(prob.a)
    assert np.abs(lam).max() / np.abs(lam).min() == pytest.approx(1e3, rel=1e-6)
    x = prob.reference
    assert np.isrealobj(x) == (dtype == "float64")
    # residual of the reference itself: cond(V) = 10 and spread 1e3 bound its rounding
    assert bench.inverse_root_residual(x, prob.a, 3) <= 1e-9


def test_general_rows_and_skips():
    probs = [bench.general_problem(10, p, 1e2, dtype="float64") for p in (2, 3)]
    names = [
        "rootsolve schur_newton",
        "scipy fractional_matrix_power",
        "scipy sqrtm (p = 2^k), inverted",
        bench.BASELINE,
    ]
    results = bench.run(probs, [bench.find_method(m) for m in names], repeats=1)
    for res, p in zip(results, (2, 3), strict=True):
        rows = {r["method"]: r for r in res["rows"]}
        assert res["skipped"][bench.BASELINE] == "no general support"
        assert rows["scipy fractional_matrix_power"]["time_ratio"] == pytest.approx(1.0)
        assert rows["rootsolve schur_newton"]["status"] == "ok"
        assert rows["rootsolve schur_newton"]["rel_error"] <= 1e-11
        assert ("scipy sqrtm (p = 2^k), inverted" in rows) == (p == 2)


def test_general_flag_adds_real_and_complex_problems(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        ["--general", "--n", "8", "--p", "2", "--repeats", "1", "--json",
         "--methods", "schur_newton,fractional"]
    )
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    assert '"family": "general"' in out and '"dtype": "complex128"' in out
