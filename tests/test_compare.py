"""``python -m rootsolve compare``: problems, the JSON report and the tables."""

import json

import numpy as np
import pytest

from rootsolve import bench
from rootsolve.__main__ import main

EPS64 = float(np.finfo(np.float64).eps)


def _residual_bound(n: int, cond: float) -> float:
    """Residual bound of a backward-stable inverse p-th root of an SPD matrix.

    A backward error ||dA||_F <= c n eps ||A||_2 moves A^(-1/p) by at most
    max |f[l_i, l_j]| ||dA||_F with f(x) = x^(-1/p), whose divided differences
    are bounded by |f'(l_min)| = l_min^(-1/p - 1) / p (Higham, Functions of
    Matrices, thm. 3.11 and Daleckii-Krein). Relative to ||X||_F >=
    l_min^(-1/p) that is c n cond eps / p (this bound over p); the residual
    X^p A - I = -X^p dA is at most c n cond eps (this bound). c = 10 covers
    the constants of eigh and Newton.
    """
    return 10 * n * cond * EPS64




def _run_json(capsys, *args):
    assert main(["compare", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_json_tiny_problem(capsys):
    out = _run_json(capsys, "--n", "8", "--repeats", "1")
    assert {"environment", "repeats", "results"} <= out.keys()
    assert out["repeats"] == 1
    assert [r["problem"]["p"] for r in out["results"]] == list(bench.DEFAULT_P)
    for res in out["results"]:
        prob = res["problem"]
        expected = {"family": "spd", "n": 8, "cond": 1e6, "batch": 0, "dtype": "float64"}
        assert prob == {**prob, **expected}
        rows = {r["method"]: r for r in res["rows"]}
        assert set(rows) | set(res["skipped"]) == {m.name for m in bench.METHODS}
        assert rows[bench.BASELINE]["time_ratio"] == pytest.approx(1.0)
        bound = _residual_bound(8, 1e6)
        for name, row in rows.items():
            assert set(row) == {
                "method", "time_s", "times_s", "time_ratio", "rel_error", "residual",
                "iterations", "gemms", "status",
            }
            if not name.startswith("rootsolve"):
                continue
            assert row["status"] == "ok", row
            assert row["time_s"] > 0 and len(row["times_s"]) == 1
            assert row["rel_error"] <= bound / prob["p"], row
            assert row["residual"] <= bound, row
            if "newton" in name:
                assert 1 <= row["iterations"] <= 100
                assert row["gemms"] >= 3 * row["iterations"]


def test_cli_batch_float32_and_method_filter(capsys):
    out = _run_json(
        capsys, "--n", "6", "--p", "3", "--batch", "2", "--dtype", "float32",
        "--repeats", "2", "--methods", "rootsolve eigh,numpy",
    )
    (res,) = out["results"]
    assert res["problem"]["batch"] == 2 and res["problem"]["dtype"] == "float32"
    names = [r["method"] for r in res["rows"]]
    assert names == ["rootsolve eigh", "rootsolve eigh, jax jit", bench.BASELINE]
    # float32 input, float64 computation: the error is that of rounding the output.
    eps32 = float(np.finfo(np.float32).eps)
    assert res["rows"][0]["rel_error"] <= 10 * 6 * eps32


def test_plain_and_rich_tables(capsys):
    prob = bench.spd_problem(5, 2, 10.0)
    results = bench.run([prob], [bench.find_method(bench.BASELINE)], repeats=1)
    bench.render_plain(results)
    text = capsys.readouterr().out
    assert "n=5, p=2" in text and bench.BASELINE in text
    rich_console = pytest.importorskip("rich.console")
    console = rich_console.Console(width=120, record=True)
    bench.render_rich(results, console)
    assert bench.BASELINE in console.export_text()


def test_failing_method_is_reported_not_raised():
    def broken(prob):
        def run():
            raise RuntimeError("no luck")

        return run

    row = bench.measure(bench.spd_problem(4, 2, 2.0), bench.Method("broken", broken), 1)
    assert row.status == "error: RuntimeError: no luck" and row.time_s is None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_spd_problem_has_its_condition_number_and_root(dtype):
    n, p, cond = 12, 3, 1e4
    prob = bench.spd_problem(n, p, cond, batch=2, dtype=dtype, seed=3)
    assert prob.a.shape == (2, n, n) and prob.a.dtype == np.dtype(dtype)
    a = prob.a.astype(np.float64)
    np.testing.assert_array_equal(a, np.swapaxes(a, -1, -2))
    w, v = np.linalg.eigh(a)
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(w[:, -1] / w[:, 0], cond, rtol=10 * n * cond * eps)
    ref = (v * w[:, None, :] ** (-1 / p)) @ np.swapaxes(v, -1, -2)
    assert bench.relative_error(ref, prob.reference) <= _residual_bound(n, cond) / p


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--n", "0"])
    assert "must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "--cond", "0.5"])
    assert "condition number must be >= 1, got 0.5" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="matches none"):
        main(["compare", "--n", "4", "--methods", "nonesuch"])


def test_load_warning_compares_the_load_with_the_cpus():
    quiet = {"load_average_1min": 0.1, "cpus": 2}
    busy = {"load_average_1min": 1.9, "cpus": 2}
    assert bench.load_warning(quiet) is None
    assert bench.load_warning({"load_average_1min": None, "cpus": 2}) is None
    msg = bench.load_warning(busy)
    assert "load average 1.90 on 2 CPUs" in msg and "unreliable" in msg
    assert bench.load_warning({"load_average_1min": 1.9, "cpus": 16}) is None


def test_table_shows_the_spread_and_the_run_is_announced(capsys):
    prob = bench.spd_problem(5, 2, 10.0)
    results = bench.run([prob], [bench.find_method(bench.BASELINE)], repeats=3)
    times = results[0]["rows"][0]["times_s"]
    bench.render_plain(results)
    text = capsys.readouterr().out
    assert "min / max" in text
    assert f"{min(times) * 1e3:.2f} / {max(times) * 1e3:.2f} ms" in text
    assert main(["compare", "--n", "4", "--p", "2", "--repeats", "1", "--methods", "numpy"]) == 0
    captured = capsys.readouterr()
    assert "compare: 1 problem x 1 method" in captured.err
    assert "(1 problem x 1 method in " in captured.out
