"""The demo and the training race: ``python -m rootsolve_optim.demo`` (``make demo``).

Not imported by ``import rootsolve_optim``; it needs flax, rich, matplotlib and
scikit-learn (the ``demo`` extra). :mod:`.tasks` holds the models and data,
:mod:`.race` the training loop, sweep and goals, :mod:`.ablations` Shampoo's
options one at a time, :mod:`.digits` the earlier MLP demo (``--task digits``).
"""
