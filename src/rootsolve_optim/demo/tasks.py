"""Training tasks of the race, on data that ships with Python and scikit-learn.

Three tasks, each a :class:`Task` (parameters, a jax batch sampler, a training loss
and a validation loss):

- :func:`char_lm`: a small decoder-only transformer (pre-LayerNorm, causal
  self-attention, GELU MLP; Vaswani et al., arXiv 1706.03762, with the
  pre-LayerNorm placement of Xiong et al., arXiv 2002.04745) trained as a
  character-level language model on the source code of Python's standard
  library. The text is the concatenation of the top-level ``*.py`` files of
  ``sysconfig.get_paths()["stdlib"]`` whose names do not start with ``_``, in
  sorted order, as ASCII (other characters become ``?``); the first
  ``train_fraction`` of it (by position) trains, the rest validates, so the
  validation text comes from modules the model never saw. The text differs
  between Python versions; within one version it is fixed.
- :func:`char_lm_wide`: a second transformer language model of another shape
  (wider, deeper, longer context, fewer sequences per batch) on the next
  stretch of the same text, disjoint from the first task's; a check that what
  is tuned on the first carries over.
- :func:`digits_cnn`: a small convolutional network on scikit-learn's 8 x 8
  digits (E. Alpaydin and C. Kaynak, UCI), 1,437 training and 360 validation
  images (stratified split).

Both models are flax ``linen`` modules; their parameters are plain pytrees that
any optax transformation takes.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = Any
#: Characters of the language model: ASCII, one token per byte value below 128.
VOCAB = 128


@dataclass(frozen=True)
class Task:
    """A supervised training problem as the race sees it.

    Attributes
    ----------
    name : str
        Short name (``"lm"``, ``"cnn"``).
    description : str
        One line for the console and the plot.
    init : callable
        ``init(key) -> params``.
    batch : callable
        ``batch(key) -> batch``, a random training minibatch (traceable).
    loss : callable
        ``loss(params, batch) -> scalar``, the training loss (traceable).
    val_loss : callable
        ``val_loss(params) -> scalar``, the loss on the whole validation split.
    sample : callable or None
        ``sample(params, prompt, n, key) -> str`` for language models.
    """

    name: str
    description: str
    init: Callable[[jax.Array], Params]
    batch: Callable[[jax.Array], Any]
    loss: Callable[[Params, Any], jax.Array]
    val_loss: Callable[[Params], jax.Array]
    sample: Callable[[Params, str, int, jax.Array], str] | None = None


# --------------------------------------------------------------------------- text


def stdlib_text(n_chars: int, offset: int = 0) -> str:
    """``n_chars`` characters of the standard library's source from ``offset``, as ASCII.

    Top-level ``*.py`` files of the standard library whose names do not start
    with ``_``, sorted by name, each preceded by a ``# <name>`` line.
    """
    if n_chars < 1:
        raise ValueError(f"n_chars must be >= 1, got {n_chars}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    stop = offset + n_chars
    root = sysconfig.get_paths()["stdlib"]
    names = sorted(f for f in os.listdir(root) if f.endswith(".py") and not f.startswith("_"))
    parts, total = [], 0
    for name in names:
        with open(os.path.join(root, name), encoding="utf-8", errors="replace") as fh:
            part = f"# {name}\n{fh.read()}\n"
        parts.append(part)
        total += len(part)
        if total >= stop:
            break
    text = "".join(parts)[:stop]
    if len(text) < stop:
        raise ValueError(
            f"the standard library at {root} holds {len(text)} characters, fewer than {stop}"
        )
    return text[offset:].encode("ascii", errors="replace").decode("ascii")


def encode(text: str) -> np.ndarray:
    """ASCII text as int32 token ids (characters above 127 become ``?``)."""
    return np.frombuffer(text.encode("ascii", errors="replace"), np.uint8).astype(np.int32)


def decode(tokens: Any) -> str:
    """Token ids back to text."""
    return bytes(np.asarray(tokens, np.uint8).tolist()).decode("ascii", errors="replace")


class _Block(nn.Module):
    """Pre-LayerNorm transformer block: causal multi-head attention, then a GELU MLP."""

    d_model: int
    n_heads: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        t, d, h = x.shape[-2], self.d_model, self.n_heads
        y = nn.LayerNorm()(x)
        qkv = nn.Dense(3 * d, use_bias=False, name="qkv")(y)
        q, k, v = jnp.split(qkv.reshape(*x.shape[:-1], 3 * h, d // h), 3, axis=-2)
        att = jnp.einsum("...qhc,...khc->...hqk", q, k) / np.sqrt(d // h)
        causal = jnp.tril(jnp.ones((t, t), bool))
        att = jax.nn.softmax(jnp.where(causal, att, -1e9), axis=-1)
        y = jnp.einsum("...hqk,...khc->...qhc", att, v).reshape(x.shape)
        x = x + nn.Dense(d, use_bias=False, name="proj")(y)
        y = nn.Dense(4 * d, name="fc")(nn.LayerNorm()(x))
        return x + nn.Dense(d, name="out")(nn.gelu(y))


class CharTransformer(nn.Module):
    """Decoder-only transformer over characters: token and position embeddings, blocks, head."""

    vocab: int = VOCAB
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    context: int = 64

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        t = tokens.shape[-1]
        x = nn.Embed(self.vocab, self.d_model, name="embed")(tokens)
        pos = self.param("pos", nn.initializers.normal(0.02), (self.context, self.d_model))
        x = x + pos[:t]
        for i in range(self.n_layers):
            x = _Block(self.d_model, self.n_heads, name=f"block{i}")(x)
        return nn.Dense(self.vocab, use_bias=False, name="head")(nn.LayerNorm()(x))


def char_lm(
    *,
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    context: int = 64,
    batch_size: int = 16,
    n_chars: int = 600_000,
    offset: int = 0,
    train_fraction: float = 0.9,
    val_windows: int = 128,
    name: str = "lm",
) -> Task:
    """The character-level transformer language model on the standard library's source.

    Parameters
    ----------
    d_model, n_layers, n_heads, context : int
        Width, depth, attention heads and context length (characters).
    batch_size : int
        Sequences per training batch (each ``context`` characters).
    n_chars : int
        Characters of text, split by position into training and validation.
    offset : int
        Where the text starts in the standard library's source (characters).
    train_fraction : float
        Share of the text (its beginning) that trains.
    val_windows : int
        Evenly spaced windows of the validation text scored by ``val_loss``
        (mean next-character cross-entropy, in nats).
    name : str
        The task's name.
    """
    if d_model % n_heads:
        raise ValueError(f"d_model must be a multiple of n_heads, got {d_model} and {n_heads}")
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    tokens = encode(stdlib_text(n_chars, offset))
    cut = int(train_fraction * len(tokens))
    train, val = jnp.asarray(tokens[:cut]), tokens[cut:]
    if len(val) < context + 1 or cut < context + 1:
        raise ValueError(f"n_chars={n_chars} is too short for context {context}")
    starts = np.linspace(0, len(val) - context - 1, val_windows).astype(np.int64)
    val_batch = jnp.asarray(np.stack([val[s : s + context + 1] for s in starts]))
    model = CharTransformer(VOCAB, d_model, n_layers, n_heads, context)

    def init(key):
        return model.init(key, jnp.zeros((1, context), jnp.int32))["params"]

    def batch(key):
        starts = jax.random.randint(key, (batch_size,), 0, train.shape[0] - context - 1)
        return jax.vmap(lambda s: jax.lax.dynamic_slice(train, (s,), (context + 1,)))(starts)

    def loss(params, seqs):
        logits = model.apply({"params": params}, seqs[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, seqs[:, 1:]).mean()

    def sample(params, prompt: str, n: int, key: jax.Array, temperature: float = 0.8) -> str:
        """``n`` characters after ``prompt``, sampled at ``temperature`` from a sliding window."""
        window = np.full(context, ord(" "), np.int32)
        ids = encode(prompt)[-context:]
        window[context - len(ids) :] = ids

        @jax.jit
        def generate(params, window, key):
            def step(window, key):
                logits = model.apply({"params": params}, window[None])[0, -1]
                nxt = jax.random.categorical(key, logits / temperature).astype(jnp.int32)
                return jnp.concatenate([window[1:], nxt[None]]), nxt

            return jax.lax.scan(step, window, jax.random.split(key, n))[1]

        return prompt + decode(generate(params, jnp.asarray(window), key))

    desc = (
        f"char transformer LM ({n_layers} layers, d {d_model}, {n_heads} heads, context "
        f"{context}, batch {batch_size}) on {len(tokens):,} characters of Python's stdlib "
        f"source from character {offset:,} ({cut:,} train / {len(val):,} validation)"
    )
    return Task(name, desc, init, batch, loss, lambda p: loss(p, val_batch), sample)


def char_lm_wide(
    *,
    d_model: int = 128,
    n_layers: int = 3,
    n_heads: int = 4,
    context: int = 128,
    batch_size: int = 8,
    n_chars: int = 600_000,
    offset: int = 600_000,
    **options: Any,
) -> Task:
    """:func:`char_lm` of another shape on the text that follows the first task's.

    Twice the width, 3 blocks, twice the context and half the sequences per batch
    (the same 1,024 characters), on the ``n_chars`` characters from ``offset``:
    with both tasks' defaults the two texts do not overlap. ``options`` go to
    :func:`char_lm`.
    """
    return char_lm(
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        context=context,
        batch_size=batch_size,
        n_chars=n_chars,
        offset=offset,
        name="lm_wide",
        **options,
    )


# --------------------------------------------------------------------------- digits CNN


class DigitsCNN(nn.Module):
    """Two 3x3 convolutions (ReLU), 2x2 average pooling, a dense ReLU layer and the classifier."""

    channels: tuple[int, int] = (16, 32)
    hidden: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.Conv(self.channels[0], (3, 3))(x))
        x = nn.relu(nn.Conv(self.channels[1], (3, 3))(x))
        x = nn.avg_pool(x, (2, 2), (2, 2)).reshape(x.shape[0], -1)
        return nn.Dense(10)(nn.relu(nn.Dense(self.hidden)(x)))


def digits_cnn(*, batch_size: int = 64, seed: int = 0) -> Task:
    """The digits CNN: 8 x 8 images scaled to [0, 1], 80/20 stratified train/validation split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    x_tr, x_va = jnp.asarray(x_tr), jnp.asarray(x_va)
    y_tr, y_va = jnp.asarray(y_tr, jnp.int32), jnp.asarray(y_va, jnp.int32)
    model = DigitsCNN()

    def init(key):
        return model.init(key, x_tr[:1])["params"]

    def batch(key):
        idx = jax.random.randint(key, (batch_size,), 0, x_tr.shape[0])
        return x_tr[idx], y_tr[idx]

    def loss(params, xy):
        logits = model.apply({"params": params}, xy[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, xy[1]).mean()

    desc = (
        f"digits CNN (conv 16, conv 32, pool, dense 64; batch {batch_size}) on "
        f"{x_tr.shape[0]} train / {x_va.shape[0]} validation images"
    )
    return Task("cnn", desc, init, batch, loss, lambda p: loss(p, (x_va, y_va)))


#: Tasks by name, each a function of keyword options.
TASKS: dict[str, Callable[..., Task]] = {
    "lm": char_lm,
    "lm_wide": char_lm_wide,
    "cnn": digits_cnn,
}
