"""The training race of ``python -m rootsolve_optim.demo`` end to end, on a tiny config."""


import jax
import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("rich")

from rootsolve_optim.demo import race  # noqa: E402
from rootsolve_optim.demo.__main__ import main  # noqa: E402
from rootsolve_optim.demo.report import race_rows  # noqa: E402
from rootsolve_optim.demo.tasks import (  # noqa: E402
    TASKS,
    char_lm,
    char_lm_wide,
    decode,
    encode,
    stdlib_text,
)

TINY = [
    "--steps", "30", "--eval-every", "10", "--batch-size", "8", "--d-model", "16",
    "--layers", "1", "--heads", "2", "--context", "16", "--chars", "20000",
    "--sample-chars", "12",
]  # fmt: skip


def test_race_end_to_end(tmp_path, capsys):
    results = main([*TINY, "--out", str(tmp_path), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert "OpenBLAS limited to 1 thread" in out
    assert (tmp_path / "race_lm.png").stat().st_size > 0
    assert (tmp_path / "r.json").stat().st_size > 0
    (result,) = results
    assert set(result.histories) == set(race.CONTENDERS)
    for name, h in result.histories.items():
        assert h.steps == [0, 10, 20, 30]
        # From the uniform-ish initial prediction (about log 128 nats) every optimizer
        # must have learnt the character frequencies after 30 steps.
        assert h.val_loss[-1] < h.val_loss[0] - 0.5, (name, h.val_loss)
        assert h.seconds[-1] > 0 and h.ms_per_step > 0
        assert (h.root_failures is None) == (name != "Shampoo")
        assert f"{name} writes" in out
    assert result.target == result.histories["AdamW"].best
    rows = {r["optimizer"]: r for r in race_rows(result)}
    assert rows["AdamW"]["steps_ratio"] == pytest.approx(1.0)
    assert rows["Shampoo"]["root_failures"] == 0
    for r in rows.values():
        assert set(r) >= {"best_val_loss", "steps_to_target", "seconds_to_target", "ms_per_step"}


def test_goals_rows_follow_the_ratios():
    def hist(name, losses):
        steps = [0, 10, 20, 30]
        return race.History(name, 1e-3, 0, steps, losses, [0.0, 1.0, 2.0, 3.0])

    result = race.Result(
        0,
        {
            "Shampoo": hist("Shampoo", [5.0, 3.0, 1.0, 0.9]),
            "AdamW": hist("AdamW", [5.0, 4.0, 3.0, 2.0]),
            "Muon": hist("Muon", [5.0, 2.0, 1.5, 1.0]),
        },
    )
    # AdamW's best (2.0) is reached at step 30; Shampoo crosses 2.0 halfway from 10 to 20,
    # Muon exactly at 10.
    assert result.reach("Shampoo") == (15.0, 1.5)
    assert result.reach("Muon") == (10.0, 1.0)
    rows = {g.name: g for g in race.goals([result])}
    assert rows["steps to AdamW's best, Shampoo / AdamW"].value == pytest.approx(0.5)
    assert rows["steps to AdamW's best, Shampoo / AdamW"].passed
    assert rows["steps to AdamW's best, Shampoo / Muon"].value == pytest.approx(1.5)
    assert not rows["steps to AdamW's best, Shampoo / Muon"].passed
    never = race.History("x", 1.0, 0, [0, 10], [5.0, 4.0], [0.0, 1.0])
    assert never.reach(2.0) is None


def test_text_is_deterministic_ascii_and_split_by_position():
    text = stdlib_text(5000)
    assert text == stdlib_text(5000) and len(text) == 5000
    assert text.startswith("# ") and max(map(ord, text)) < 128
    assert decode(encode(text)) == text
    with pytest.raises(ValueError, match="n_chars must be >= 1, got 0"):
        stdlib_text(0)
    with pytest.raises(ValueError, match="multiple of n_heads, got 10 and 4"):
        char_lm(d_model=10, n_heads=4)
    assert stdlib_text(3000, offset=2000) == stdlib_text(5000)[2000:]
    with pytest.raises(ValueError, match="offset must be >= 0, got -1"):
        stdlib_text(10, offset=-1)


def test_second_transformer_task_reads_the_text_after_the_first():
    wide = char_lm_wide(n_chars=20_000, offset=20_000)
    assert TASKS["lm_wide"] is char_lm_wide and wide.name == "lm_wide"
    assert "3 layers, d 128" in wide.description and "from character 20,000" in wide.description
    params = wide.init(jax.random.PRNGKey(0))
    assert params["pos"].shape == (128, 128)
    seqs = wide.batch(jax.random.PRNGKey(1))
    assert seqs.shape == (8, 129)
    assert int(seqs.min()) >= 0 and int(seqs.max()) < 128
    assert np.isfinite(float(wide.val_loss(params)))


def test_bad_options_are_rejected(capsys):
    with pytest.raises(SystemExit):
        main(["--steps", "25", "--eval-every", "10"])
    assert "multiple of --eval-every" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--lr", "Adagrad=0.1"])
    assert "unknown optimizer 'Adagrad'" in capsys.readouterr().err
