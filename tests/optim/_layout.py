"""Reading one parameter's statistics and roots out of a Shampoo state."""

import jax

from rootsolve_optim import Factor, FactorMetrics, block_stacks


def param_factors(state, params, *keys, **structural):
    """The factors of the parameter at ``params[keys[0]][keys[1]]...``, in (group, dimension)
    order, each restricted to that parameter's blocks.

    ``structural``: the options that shape the state (``block_size``,
    ``stack_parameters``, ...), as given to the optimizer.
    """
    paths = [tuple(k.key for k in p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    leaf = paths.index(keys)
    out, j = [], 0
    for st in block_stacks(params, **structural):
        for _ in st.dims:
            f = state.factors[j]
            for m in sorted(st.members, key=lambda m: m.group):
                if m.leaf == leaf:
                    part = slice(m.start, m.start + m.num_blocks)
                    out.append((m.group, j, Factor(
                        f.stat[part], f.root[part], FactorMetrics(*(x[part] for x in f.metrics))
                    )))
            j += 1
    return [f for _, _, f in sorted(out, key=lambda t: (t[0], t[1]))]
