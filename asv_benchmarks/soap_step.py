"""SOAP's training step with each basis orthonormalization, against AdamW.

``python -m asv_benchmarks.soap_step [variant ...]`` compiles the character
transformer's 20-step training chunk (:mod:`rootsolve_optim.demo`) for AdamW and
three SOAP variants: refreshes orthonormalized by shifted Cholesky QR, by
Householder QR (``rootsolve.refine_eigenbasis(orthonormalize=...)``), and no
refresh at all (``precondition_frequency=10**6``). It then times 7 chunks of each
in alternation (:func:`rootsolve_optim.demo.race.paired_step_ms`) and prints the
median milliseconds per step. On a
GPU this separates the refresh's cost from the step's (docs/optimizer.md, SOAP).
"""

from __future__ import annotations

import functools
import sys

import jax

import rootsolve
from rootsolve_optim.demo import race, tasks

VARIANTS = ("AdamW", "SOAP cholesky", "SOAP householder", "SOAP no refresh")


def _contender(name: str) -> tuple[race.Contender, str | None]:
    if name == "AdamW":
        return race.CONTENDERS["AdamW"], None
    if name == "SOAP no refresh":
        return race.soap_contender("SOAP", precondition_frequency=10**6), None
    return race.soap_contender("SOAP"), name.split()[1]


def main(variants: tuple[str, ...] = VARIANTS, rounds: int = 7) -> dict[str, float]:
    """Median ms per step of each variant (printed with compile seconds)."""
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    task, cfg = tasks.char_lm(), race.RaceConfig(steps=400, eval_every=20)
    plain = rootsolve.refine_eigenbasis
    trainers = {}
    try:
        for name in variants:
            contender, orth = _contender(name)
            # SOAP calls rootsolve.refine_eigenbasis while the chunk is traced; a
            # trainer keeps its compiled chunk, so the timing below reuses it.
            rootsolve.refine_eigenbasis = (
                functools.partial(plain, orthonormalize=orth) if orth else plain
            )
            trainer = race.Trainer(task, contender, cfg)
            params = task.init(jax.random.PRNGKey(0))
            trainer.compile(params, trainer.init_state(params))
            print(f"{name}: compile {trainer.compile_seconds:.1f} s", flush=True)
            trainers[name] = trainer
    finally:
        rootsolve.refine_eigenbasis = plain
    ms = race.paired_step_ms(trainers, {n: 1e-2 for n in trainers}, rounds=rounds)
    print(f"jax devices: {jax.devices()}")
    for n, t in ms.items():
        print(f"{n:>18}: {t:7.3f} ms/step (median of {rounds} chunks of {cfg.eval_every} steps)")
    return ms


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or VARIANTS)
