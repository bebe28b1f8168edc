"""From directions of stacked blocks to one direction per parameter, grafted.

An optimizer that preconditions blocks (Shampoo, or Adam in Shampoo's
eigenbasis) computes a direction for every block stack; this module gives
each block or tensor the norm of the grafting method's direction
(Agarwal et al., arXiv 2002.11803, sec. 3; per block as in Anil et al., arXiv
2002.09018, sec. 5) and puts the blocks back into the parameters' shapes.
Parameters without blocks take the grafting direction as it is. Nothing here
depends on how the block directions were computed.
"""

from __future__ import annotations

from typing import Any

import jax

from . import blocking
from .blocking import BlockPlan
from .control import all_true, finite
from .grafting import graft_blocks
from .stacking import BlockStack, join_members, per_member

__all__ = ["grafted_directions"]


def grafted_directions(
    stacks: tuple[BlockStack, ...],
    plans: list[BlockPlan],
    dirs: list[jax.Array],
    graft_dirs: list[jax.Array],
    graft_type: str,
    graft_norm: str,
) -> tuple[list[jax.Array], Any]:
    """Per-parameter directions from per-stack block directions ``dirs``, grafted.

    ``graft_dirs`` are the grafting method's directions, one per parameter;
    ``graft_norm`` is ``"block"`` or ``"tensor"``, and ``graft_type="none"``
    leaves the directions unscaled. Also returns whether every direction is
    finite, judged on the norms and scales (so, the grafting directions being
    finite, without a pass of its own) or, without grafting, on the
    directions themselves.
    """
    flags = []
    if graft_type == "none":
        flags = [finite(d) for d in dirs]
    elif graft_norm == "block":
        # The graft's block norms come from reshaped views of the graft (no copy); its
        # blocks are read only where a block direction vanishes.
        norms = [
            blocking.block_norms(gd, pl) if not pl.graft_only else ()
            for gd, pl in zip(graft_dirs, plans, strict=True)
        ]
        gblocks = [
            blocking.to_blocks(gd, pl) if not pl.graft_only else ()
            for gd, pl in zip(graft_dirs, plans, strict=True)
        ]
        grafted = [
            graft_blocks(d, join_members(st, gblocks), join_members(st, norms))
            for st, d in zip(stacks, dirs, strict=True)
        ]
        dirs = [d for d, _ in grafted]
        flags = [f for _, f in grafted]
    per_leaf = per_member(stacks, dirs, plans)
    out = []
    for pl, gd, parts in zip(plans, graft_dirs, per_leaf, strict=True):
        if pl.graft_only:
            out.append(gd)
            continue
        d = blocking.from_blocks(tuple(parts), pl)
        if graft_type != "none" and graft_norm == "tensor":
            d, f = graft_blocks(d[None], gd[None])
            d = d[0]
            flags.append(f)
        out.append(d)
    return out, all_true(flags)
