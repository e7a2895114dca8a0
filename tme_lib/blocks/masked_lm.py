"""Masked-language modelling: which tokens a model must guess, and the loss on them.

Taught in ``notebooks/05_pretraining`` (section "Masked-language modelling"), after Devlin et
al. (2019). Every real word of a batch is *chosen* with probability ``rate`` (15 %), each
independently; padding and the special tokens (ids below ``first_word``: padding, unknown word,
mask, CLS) are never chosen. A chosen token is replaced by the mask token with probability
0.8, by a word drawn uniformly from the vocabulary with probability 0.1, and left as it is
with probability 0.1. The model must predict the original token at the chosen positions only:

    L = -(1/|C|) Σ_{t ∈ C} log p(x_t | x̃)        (C: chosen positions, x̃: the corrupted input)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100  # the label of a position that was not chosen (no loss there)
MASK_RATE = 0.15
MASK_SHARES = (0.8, 0.1, 0.1)  # mask token, random word, unchanged


def mask_tokens(
    x: torch.Tensor,
    mask: torch.Tensor,
    mask_id: int,
    first_word: int,
    vocab_size: int,
    rate: float = MASK_RATE,
    generator: torch.Generator | None = None,
    shares: tuple = MASK_SHARES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` for one batch of ids ``x [B, T]`` with real-token ``mask``: the
    corrupted ids, and the original id at chosen positions (:data:`IGNORE` elsewhere); a chosen
    token becomes the mask token, a random word or itself with probabilities ``shares``. ``x``
    is not changed. Section "Masked-language modelling"."""
    draw = torch.rand(x.shape, generator=generator, device=x.device)
    chosen = (draw < rate) & mask & (x >= first_word)
    labels = torch.where(chosen, x, torch.full_like(x, IGNORE))
    kind = torch.rand(x.shape, generator=generator, device=x.device)
    random_words = torch.randint(
        first_word, vocab_size, x.shape, generator=generator, device=x.device
    )
    as_mask, as_random = shares[0], shares[0] + shares[1]
    inputs = torch.where(chosen & (kind < as_mask), torch.full_like(x, mask_id), x)
    swap = chosen & (kind >= as_mask) & (kind < as_random)
    inputs = torch.where(swap, random_words, inputs)
    return inputs, labels


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the chosen positions only: ``logits [..., V]`` and ``labels
    [...]`` (:data:`IGNORE` where not chosen). 0 when nothing was chosen, never NaN."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    keep = labels != IGNORE
    if not keep.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[keep].float(), labels[keep])
