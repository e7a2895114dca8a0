"""TME 9 models: global attention over frozen word vectors for IMDB sentiment.

Taught in ``notebooks/01_tme9_global_attention``. Every model embeds the token ids with frozen
50-d word vectors (a non-persistent buffer: checkpoints hold only what was learned), pools the
review into one vector ``t̂`` and classifies it with a linear layer ``logit = w·t̂ + b``.
They differ only in the pooling:

=========================  ===============================================================
``baseline``               ``t̂ = (1/n) Σ_i x_i`` over the ``n`` real tokens
``attention_simple``       one learned query ``q``: ``p(a_i|t) = softmax_i(q·x_i)``,
                           ``t̂ = Σ_i p(a_i|t) x_i``
``attention_query``        ``q(t) = W_q x̄ + b_q`` from the mean ``x̄``; keys, values ``= x_i``
``attention_query_value``  as above with learned values ``v(x_i) = tanh(W_v x_i + b_v)``
``attention_lstm``         the same attention over the states of a bidirectional LSTM
=========================  ===============================================================

Padding (mask ``False``) never counts: the mean divides by the number of real tokens
(:func:`masked_mean`) and the attention gives padding exactly zero weight (:func:`tme_lib.attention.masked_softmax`,
:func:`attend`). Every model's ``forward(x, mask)`` returns ``(logit [B], weights [B, T] or None)``.

The entropy penalty of section "Penalising the entropy" is not a model: any attention model
trained with ``TrainConfig(entropy_weight=λ)`` minimises ``L + λ·mean_b H(p(·|t_b))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tme_lib import config
from tme_lib.batching import BucketLoader, make_loaders
from tme_lib.imdb import ImdbData, load_imdb
from tme_lib.attention import masked_softmax
from tme_lib.records import RunRecord, load_or_train, read_record, record_path
from tme_lib.toy import load_toy
from tme_lib.train import TrainConfig
from tme_lib.vectors import load_vectors


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, T, d]`` over the real positions of ``mask [B, T]``: ``(1/n) Σ_{i real} x_i``.

    Section "The baseline: the mean of the word vectors". A row without any real position gives
    a zero vector (not NaN). Returns ``[B, d]``.
    """
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor):
    """Global attention with one query per review.

    ``p(a_i|t) = softmax_i(q·k_i)`` over the real tokens, ``t̂ = Σ_i p(a_i|t) v_i``.
    ``query [B, d]`` (or ``[d]``, shared by all reviews), ``keys [B, T, d]``,
    ``values [B, T, dv]``, ``mask [B, T]``. Returns ``(t̂ [B, dv], weights [B, T])``.
    Section "Simple attention: one learned question".

    No ``1/√d`` here, unlike self-attention (:mod:`tme_lib.attention`): the query is a learned
    vector (or map), so a scale would only make Adam take √d times longer to sharpen it.
    """
    scores = (keys @ query.expand(keys.shape[0], -1).unsqueeze(-1)).squeeze(-1)  # [B, T]
    weights = masked_softmax(scores, mask)
    return (weights.unsqueeze(-1) * values).sum(1), weights


class FrozenEmbedding(nn.Module):
    """Looks token ids up in frozen word vectors ``[V, d]`` (row 0 = padding)."""

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        if vectors.dim() != 2:
            raise ValueError(f"vectors must be a [vocabulary, dim] matrix, got shape {tuple(vectors.shape)}.")
        self.register_buffer("vectors", vectors.detach().float().clone(), persistent=False)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self.vectors)


class Baseline(nn.Module):
    """Mean of the word vectors, then a linear classifier: ``logit = w·(1/n) Σ_i x_i + b``.

    No attention (every real word weighs ``1/n``), so ``forward`` returns ``(logit, None)``.
    Parameters: ``d + 1``. Section "The baseline: the mean of the word vectors".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)
        self.classifier = nn.Linear(self.embed.dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        return self.classifier(masked_mean(self.embed(x), mask)).squeeze(-1), None


class _GlobalAttention(nn.Module):
    """Shared skeleton: embed, ``pool`` (subclasses), then a linear classifier on ``t̂``."""

    def __init__(self, vectors: torch.Tensor, pooled_dim: int | None = None):
        super().__init__()
        self.embed = FrozenEmbedding(vectors)
        self.classifier = nn.Linear(pooled_dim or self.embed.dim, 1)

    def pool(self, e: torch.Tensor, mask: torch.Tensor):
        """``(t̂ [B, dv], weights [B, T])`` from the embedded review ``e [B, T, d]``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        pooled, weights = self.pool(self.embed(x), mask)
        return self.classifier(pooled).squeeze(-1), weights


class AttentionSimple(_GlobalAttention):
    """One learned query ``q`` shared by all reviews: ``p(a_i|t) = softmax_i(q·x_i)``,
    ``t̂ = Σ_i p(a_i|t) x_i``. Parameters: ``d`` (query) ``+ d + 1`` (classifier).

    ``q`` starts at zero, so training starts from the baseline's uniform weights.
    Section "Simple attention: one learned question".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__(vectors)
        self.query = nn.Parameter(torch.zeros(self.embed.dim))

    def pool(self, e, mask):
        return attend(self.query, e, e, mask)


class AttentionQuery(_GlobalAttention):
    """A question that depends on the review: ``q(t) = W_q x̄ + b_q`` with ``x̄`` the masked mean;
    keys and values are the word vectors: ``t̂ = Σ_i softmax_i(q(t)·x_i) x_i``.
    Parameters: ``d² + d`` (query map) ``+ d + 1``. The query map starts at zero (uniform weights).
    Section "A question per review".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__(vectors)
        self.query = nn.Linear(self.embed.dim, self.embed.dim)
        nn.init.zeros_(self.query.weight)
        nn.init.zeros_(self.query.bias)

    def pool(self, e, mask):
        return attend(self.query(masked_mean(e, mask)), e, self.values(e), mask)

    def values(self, e: torch.Tensor) -> torch.Tensor:
        return e


class AttentionQueryValue(AttentionQuery):
    """As :class:`AttentionQuery` with learned values ``v(x_i) = tanh(W_v x_i + b_v)``:
    ``t̂ = Σ_i p(a_i|t) v(x_i)``. Parameters: ``2(d² + d) + d + 1``.
    Section "Learned values".
    """

    def __init__(self, vectors: torch.Tensor):
        super().__init__(vectors)
        self.value = nn.Linear(self.embed.dim, self.embed.dim)

    def values(self, e: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.value(e))


class AttentionLSTM(_GlobalAttention):
    """Attention over the states ``h_i = [→h_i; ←h_i]`` of a bidirectional LSTM.

    ``q(t) = W_q h̄ + b_q`` from the masked mean of the states; keys and values are the states:
    ``t̂ = Σ_i softmax_i(q(t)·h_i) h_i``. Section "Attention over LSTM states".

    Why bidirectional: a left-to-right state ``→h_i`` only knows words ``1..i``, so the late states
    summarise more of the review and draw the attention to its end; with both directions
    every state describes its word in the context of the whole review, and the weight ``p(a_i|t)``
    still points at a place in the text.

    Padding never reaches a state: the sequences are packed with their true lengths, so the
    backward LSTM starts on each review's last real word (a padded batch would make it read the
    padding first). Padding must be at the end of each row (as ``BucketLoader`` builds batches).
    Parameters:
    ``2·4H(d + H + 2)`` (LSTM, both directions, two biases) ``+ (2H)² + 2H`` (query)
    ``+ 2H + 1`` (classifier).
    """

    def __init__(self, vectors: torch.Tensor, hidden: int = 64):
        super().__init__(vectors, pooled_dim=2 * hidden)
        self.lstm = nn.LSTM(self.embed.dim, hidden, batch_first=True, bidirectional=True)
        self.query = nn.Linear(2 * hidden, 2 * hidden)

    def states(self, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """LSTM states ``[B, T, 2H]`` of the real tokens only (zero at padding positions)."""
        lengths = mask.sum(1).clamp_min(1).cpu()  # a review needs one step; its weights stay zero
        packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=e.shape[1])
        return h

    def pool(self, e, mask):
        h = self.states(e, mask)
        return attend(self.query(masked_mean(h, mask)), h, h, mask)


MODELS = {
    "baseline": Baseline,
    "attention_simple": AttentionSimple,
    "attention_query": AttentionQuery,
    "attention_query_value": AttentionQueryValue,
    "attention_lstm": AttentionLSTM,
}


def build_model(name: str, vectors: torch.Tensor, **kwargs) -> nn.Module:
    """The TME 9 model called ``name`` (a key of :data:`MODELS`) on frozen ``vectors``."""
    if name not in MODELS:
        raise KeyError(f"unknown TME 9 model {name!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[name](vectors, **kwargs)


# --- Experiments: one config per run, the same in the notebook and in tools/run_tme9.py ---------

# Settings of each profile. Full: IMDB, word2vec vectors, reviews cut at 400 tokens (90 % of the
# reviews are shorter), epochs chosen on validation (early stopping), test once.
# Smoke: the planted-word corpus, a few epochs, tiny LSTM: the notebook runs in under a minute.
PROFILE_SETTINGS = {
    "full": dict(data={"corpus": "imdb", "max_len": 400, "vectors": "word2vec"},
                 batch_size=64, epochs=20, patience=3),
    "smoke": dict(data={"corpus": "toy", "max_len": None, "vectors": "word2vec"},
                  batch_size=32, epochs=6, patience=None),
}
OPTIMIZER_SETTINGS = {
    "adam": dict(optimizer="adam", lr=2e-3),
    # Momentum and clipping: with plain SGD steps, the query grows until the attention sits on
    # one word per review and accuracy falls to chance (section "Adam or SGD").
    "sgd": dict(optimizer="sgd", lr=0.02, momentum=0.9, grad_clip=1.0),
}
# Per model and profile, on top of the above; ``lr_scale`` multiplies the optimizer's rate and an
# ``adam`` or ``sgd`` entry applies to that optimizer only. Full-profile values were chosen on
# validation accuracy in short trial runs.
MODEL_SETTINGS = {
    "full": {
        "baseline": dict(lr_scale=5.0),
        "attention_query": dict(lr_scale=0.5, weight_decay=1e-4),
        "attention_query_value": dict(sgd=dict(lr=0.01)),
        "attention_lstm": dict(model_kwargs={"hidden": 32}, batch_size=128, epochs=3, patience=1,
                               sgd=dict(lr=0.1)),
    },
    "smoke": {
        "baseline": dict(lr_scale=5.0),
        "attention_lstm": dict(model_kwargs={"hidden": 16}, batch_size=64, epochs=4),
    },
}


def run_config(model: str, optimizer: str = "adam", seed: int = 0, entropy_weight: float = 0.0,
               settings: str | None = None, **overrides) -> TrainConfig:
    """The :class:`TrainConfig` of one TME 9 run, named ``<model>-<optimizer>-s<seed>[-ent<λ>]``.

    ``settings`` picks the sizes (``"full"`` or ``"smoke"``; default: the active profile).
    Runs with the smoke settings (the planted-word corpus) while the full profile is active get
    the prefix ``toy-`` (section "Where does the model look?"). ``overrides`` replace any field.
    """
    if model not in MODELS:
        raise KeyError(f"unknown TME 9 model {model!r}; choose one of {', '.join(MODELS)}.")
    settings = settings or config.profile()
    fields = {**PROFILE_SETTINGS[settings], **OPTIMIZER_SETTINGS[optimizer]}
    extra = dict(MODEL_SETTINGS[settings].get(model, {}))
    fields["lr"] *= extra.pop("lr_scale", 1.0)
    per_optimizer = {name: extra.pop(name, {}) for name in OPTIMIZER_SETTINGS}
    fields.update(extra, **per_optimizer[optimizer])
    name = f"{model}-{optimizer}-s{seed}" + (f"-ent{entropy_weight:g}" if entropy_weight else "")
    if settings != config.profile():
        name = f"{fields['data']['corpus']}-{name}"
    fields = {**fields, "name": name, "model": model, "seed": seed, "entropy_weight": entropy_weight}
    return TrainConfig(chapter="tme9", **{**fields, **overrides})


def load_data(cfg: TrainConfig) -> tuple[ImdbData, torch.Tensor]:
    """The reviews of ``cfg.data["corpus"]`` (``imdb``, or ``toy``: the planted-word corpus) cut
    at ``cfg.data["max_len"]`` tokens, and the frozen vectors of their vocabulary."""
    corpus, max_len = cfg.data["corpus"], cfg.data["max_len"]
    data = load_toy(max_len=max_len) if corpus == "toy" else load_imdb(max_len=max_len)
    return data, load_vectors(data.vocab, source=cfg.data["vectors"])


def loaders(data, cfg: TrainConfig):
    """:func:`tme_lib.batching.make_loaders`, with the validation reviews in a seeded random order
    instead of length order: the trainer's entropy histograms keep the first reviews of each
    pass, which in length order would be the shortest ones (and have the lowest entropies)."""
    out = make_loaders(data, cfg.batch_size, cfg.seed)
    out.val = BucketLoader(data.val, out.val.batch_size, shuffle=True, bucket=False, seed=cfg.seed)
    return out


def run(cfg: TrainConfig, data, vectors: torch.Tensor, progress: bool = True) -> RunRecord:
    """Load the record of ``cfg`` if it exists, else train it (:func:`tme_lib.records.load_or_train`)."""
    return load_or_train(cfg, lambda: build_model(cfg.model, vectors, **cfg.model_kwargs),
                         lambda: loaders(data, cfg), progress=progress)


@torch.no_grad()
def attention_weights(model: nn.Module, split, index, device=None) -> list[np.ndarray]:
    """The attention weights of reviews ``index`` of ``split`` (one array per review, its real
    tokens only), in the order of ``index``."""
    device = device or next(model.parameters()).device
    loader = BucketLoader(split, batch_size=len(index), shuffle=False, bucket=False)
    batch = loader.make_batch(np.asarray(index)).to(device)
    model.eval()
    _, weights = model(batch.x, batch.mask)
    if weights is None:
        raise ValueError(f"{type(model).__name__} has no attention weights.")
    return [w[m].cpu().numpy() for w, m in zip(weights, batch.mask)]


def planted_attention(model: nn.Module, split, batch_size: int = 256, device=None) -> dict:
    """Faithfulness on the planted-word corpus: the mean attention mass on the planted words,
    ``mean_r Σ_{i planted} p(a_i|t_r)``, next to the uniform share ``mean_r |planted_r| / n_r``
    that a model blind to them would give. Section "Where does the model look?"."""
    mass, uniform = [], []
    for start in range(0, len(split), batch_size):
        index = np.arange(start, min(start + batch_size, len(split)))
        for i, w in zip(index, attention_weights(model, split, index, device)):
            planted = split.planted_positions(i)
            mass.append(w[planted].sum())
            uniform.append(len(planted) / len(w))
    return {"planted_mass": float(np.mean(mass)), "uniform_share": float(np.mean(uniform))}


# --- The chapter's runs and their summary ---------------------------------------------------------

ATTENTION_MODELS = ("attention_simple", "attention_query", "attention_query_value", "attention_lstm")
# Entropy penalty λ (Adam), log-spaced, per model; section "Penalising the entropy".
ENTROPY_LAMBDAS = {
    "attention_simple": (0.01, 0.03, 0.1, 0.3, 1.0),
    "attention_query_value": (0.003, 0.01, 0.03, 0.1),
}
# The λ whose cost is measured over all seeds, like the unpenalised models.
ENTROPY_SEEDED = ("attention_query_value", 0.01)
# SGD with a penalty large next to the loss: reproduces the report's collapsed run.
COLLAPSE_LAMBDA = 1.0
SEEDS = {"full": (0, 1, 2), "smoke": (0,)}
# Models with more seeds than ``SEEDS``: in the full profile the LSTM, the model TME 10's best
# variant is compared with (eight seeds a side, as ``tme10.MORE_SEEDS``).
MORE_SEEDS = {"full": {"attention_lstm": (3, 4, 5, 6, 7)}, "smoke": {}}


def collapse_config() -> TrainConfig:
    """Simple attention, SGD without gradient clipping, entropy penalty λ = ``COLLAPSE_LAMBDA``:
    the setting of the report's collapsed run (section "Penalising the entropy")."""
    return run_config("attention_simple", "sgd", entropy_weight=COLLAPSE_LAMBDA, grad_clip=None)


def plan() -> list[TrainConfig]:
    """Every run of the chapter in the active profile, most important first: seed 0 of each
    model with Adam and of the cheap ones with SGD, the entropy sweep, the planted-word runs, the
    other seeds (the LSTM's last), and the LSTM with SGD (one seed: the most expensive run).
    ``tools/run_tme9.py`` trains them; the notebook loads them."""
    seeds = SEEDS[config.profile()]
    first = [run_config(m, "adam") for m in MODELS]
    first += [run_config(m, "sgd") for m in ("baseline", "attention_simple", "attention_query_value")]
    first += [run_config(m, "adam", entropy_weight=lam) for m, lams in ENTROPY_LAMBDAS.items() for lam in lams]
    first += [collapse_config()]
    if config.is_full():
        first += [run_config(m, "adam", settings="smoke") for m in ATTENTION_MODELS]
    more = [run_config(m, opt, seed) for seed in seeds[1:] for opt in ("adam", "sgd")
            for m in ("baseline", "attention_simple", "attention_query", "attention_query_value")
            if (opt, m) != ("sgd", "attention_query")]
    more += [run_config(ENTROPY_SEEDED[0], "adam", seed, entropy_weight=ENTROPY_SEEDED[1]) for seed in seeds[1:]]
    more += [run_config("attention_lstm", "adam", seed)
             for seed in seeds[1:] + MORE_SEEDS[config.profile()].get("attention_lstm", ())]
    return first + more + [run_config("attention_lstm", "sgd")]


RESULT_COLUMNS = ["model", "optimizer", "seed", "epochs", "train_loss", "train_acc", "val_acc",
                  "test_loss", "test_acc", "mean_entropy", "seconds", "device", "entropy_weight",
                  "name"]


def plan_records() -> list[RunRecord]:
    """The records of :func:`plan` that exist (a record of an older config is never used)."""
    return [read_record(record_path(cfg)) for cfg in plan() if record_path(cfg).exists()]


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard deviation over seeds, one row per (model, optimizer, λ); accuracies in %.
    Runs on the planted-word corpus (names ``toy-…``) are left out."""
    table = table[~table["name"].str.startswith("toy-")].copy()
    for column in ("train_acc", "val_acc", "test_acc"):
        table[column] *= 100
    groups = table.groupby(["model", "optimizer", "entropy_weight"], sort=False)
    out = groups.agg(runs=("seed", "count"), epochs=("epochs", "mean"), train_acc=("train_acc", "mean"),
                     val_acc=("val_acc", "mean"), test_acc=("test_acc", "mean"),
                     test_acc_sd=("test_acc", "std"), mean_entropy=("mean_entropy", "mean"),
                     mean_entropy_sd=("mean_entropy", "std"),
                     minutes_per_run=("seconds", lambda s: s.mean() / 60))
    out = out.reset_index()
    rounded = out.columns.difference(["entropy_weight"])  # λ keeps its digits: 0.003 is not 0
    out[rounded] = out[rounded].round(2)
    return out
