"""What the root computations did, kept in the optimizer state.

Every statistic carries a :class:`~rootsolve_optim.preconditioner.FactorMetrics`
(arrays with one entry per block), written by
:func:`~rootsolve_optim.preconditioner.refresh_roots` at each root refresh and
re-exported here. Being part of the state, the metrics are
readable after any step, eagerly or under ``jit``, without recompiling;
:func:`shampoo_metrics` reduces them to a few scalars for logging.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .control import concat
from .preconditioner import FactorMetrics, init_factor_metrics
from .shampoo import ShampooState

__all__ = ["FactorMetrics", "ShampooMetrics", "init_factor_metrics", "shampoo_metrics"]


class ShampooMetrics(NamedTuple):
    """Scalars summarizing every statistic of every Shampoo state in an optimizer state."""

    count: jnp.ndarray  # int32: steps applied
    skipped_steps: jnp.ndarray  # int32: steps skipped for non-finite values
    num_roots: jnp.ndarray  # int32: block statistics (one root each)
    max_residual: jnp.ndarray  # float32: worst residual of the latest attempts
    mean_residual: jnp.ndarray  # float32
    max_iterations: jnp.ndarray  # int32
    total_failures: jnp.ndarray  # int32: rejected roots, all blocks together
    never_refreshed: jnp.ndarray  # int32: blocks still on the initial (scaled identity) root
    max_steps_since_refresh: jnp.ndarray  # int32: staleness of the oldest accepted root


def _is_shampoo_state(x: Any) -> bool:
    return isinstance(x, ShampooState)


def shampoo_metrics(opt_state: Any) -> ShampooMetrics:
    """Summarize the root metrics of every :class:`ShampooState` found in ``opt_state``.

    Works on the state of ``shampoo``/``scale_by_shampoo`` directly or nested
    in ``optax.chain``, ``optax.partition`` or ``optax.inject_hyperparams``.

    Raises
    ------
    ValueError
        If ``opt_state`` holds no ShampooState.
    """
    states = [
        s
        for s in jax.tree_util.tree_leaves(opt_state, is_leaf=_is_shampoo_state)
        if _is_shampoo_state(s)
    ]
    if not states:
        raise ValueError(
            f"no ShampooState found in the optimizer state (got {type(opt_state).__name__})"
        )
    count = states[0].count
    fm = [f.metrics for s in states for f in s.factors]
    res = concat([m.residual for m in fm], jnp.float32)
    its = concat([m.iterations for m in fm], jnp.int32)
    last = concat([m.last_refresh for m in fm], jnp.int32)
    fails = concat([m.failures for m in fm], jnp.int32)
    ok = last >= 0
    stale = jnp.where(ok, count - last, 0)
    return ShampooMetrics(
        count=jnp.asarray(count, jnp.int32),
        skipped_steps=sum((s.skipped_steps for s in states), jnp.zeros((), jnp.int32)),
        num_roots=jnp.asarray(res.shape[0], jnp.int32),
        max_residual=jnp.max(res, initial=0.0),
        mean_residual=jnp.mean(res) if res.shape[0] else jnp.zeros((), jnp.float32),
        max_iterations=jnp.max(its, initial=0),
        total_failures=jnp.sum(fails, dtype=jnp.int32),
        never_refreshed=jnp.sum(~ok, dtype=jnp.int32),
        max_steps_since_refresh=jnp.max(stale, initial=0).astype(jnp.int32),
    )
