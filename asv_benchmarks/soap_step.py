"""SOAP's training step with each basis orthonormalization, against AdamW.

``python -m asv_benchmarks.soap_step [variant ...]`` compiles the character
transformer's 20-step training chunk (:mod:`rootsolve_optim.demo`) for AdamW and
three SOAP variants: refreshes orthonormalized by shifted Cholesky QR, by
Householder QR (``rootsolve.refine_eigenbasis(orthonormalize=...)``), and no
refresh at all (``precondition_frequency=10**6``). It then times 7 chunks of each
in alternation and prints the median and the fastest milliseconds per step. On a
GPU this separates the refresh's cost from the step's (docs/optimizer.md, SOAP).
"""

from __future__ import annotations

import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

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
    carry = {}
    try:
        for name in variants:
            contender, orth = _contender(name)
            # SOAP calls rootsolve.refine_eigenbasis while the chunk is traced.
            rootsolve.refine_eigenbasis = (
                functools.partial(plain, orthonormalize=orth) if orth else plain
            )
            trainer = race.Trainer(task, contender, cfg)
            params = task.init(jax.random.PRNGKey(0))
            state = trainer.init_state(params)
            chunk = trainer.compile(params, state)
            lr, key = jnp.asarray(1e-2, jnp.float32), jax.random.PRNGKey(1)
            params, state = jax.block_until_ready(chunk(params, state, lr, key))
            print(f"{name}: compile {trainer.compile_seconds:.1f} s", flush=True)
            carry[name] = [chunk, params, state, lr, key]
    finally:
        rootsolve.refine_eigenbasis = plain
    times: dict[str, list[float]] = {n: [] for n in carry}
    names = list(carry)
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            chunk, params, state, lr, key = carry[n]
            t0 = time.perf_counter()
            carry[n][1:3] = jax.block_until_ready(chunk(params, state, lr, key))
            times[n].append(1e3 * (time.perf_counter() - t0) / cfg.eval_every)
    print(f"jax devices: {jax.devices()}")
    for n, t in times.items():
        print(f"{n:>18}: {np.median(t):7.3f} ms/step (median of {rounds} chunks of "
              f"{cfg.eval_every} steps; fastest {min(t):.3f})")
    return {n: float(np.median(t)) for n, t in times.items()}


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or VARIANTS)
