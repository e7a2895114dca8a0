"""Replaced-token detection: the pretraining objective of ELECTRA (Clark et al. 2020).

Taught in ``notebooks/05_pretraining`` (section "Three routes at a small budget"). A small
masked language model, the *generator*, guesses the chosen positions of a masked batch
(:mod:`tme_lib.blocks.masked_lm`); a word is drawn from its guess at each chosen position and
written there. The *discriminator*, the encoder that is kept, reads the result and says at
every real position whether the word there is the original one. A drawn word that happens to
be the original counts as original. The discriminator learns from every position, not from
the chosen 15 % alone:

    x̂_t ~ p_G(· | x̃)  at chosen t,   x̂_t = x_t elsewhere
    r_t = 1[x̂_t ≠ x_t]
    L = L_MLM(G) + λ · mean_{t real} BCE(D(x̂)_t, r_t)        (λ = 50 in the paper)

No gradient flows through the draw: the generator learns from its own masked-LM loss only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .masked_lm import IGNORE

DISCRIMINATOR_WEIGHT = 50.0  # λ, as in Clark et al. (2020)


def replace_tokens(
    inputs: torch.Tensor,
    labels: torch.Tensor,
    guesses: torch.Tensor,
    first_word: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(replaced ids [B, T], is_replaced [B, T] bool)``: the masked batch ``inputs`` with a
    word drawn from the generator's ``guesses [N, V]`` (logits at the ``N`` chosen positions of
    ``labels``, in row-major order) written at each chosen position, and where the result
    differs from the original word. Special tokens (ids below ``first_word``) are never
    drawn. ``inputs`` is not changed."""
    chosen = labels != IGNORE
    logits = guesses.detach().float().clone()
    logits[:, :first_word] = float("-inf")
    drawn = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
    original = torch.where(chosen, labels, inputs)
    replaced = inputs.clone()
    replaced[chosen] = drawn.to(inputs.dtype)
    return replaced, replaced != original


def replaced_token_loss(
    logits: torch.Tensor, is_replaced: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean binary cross-entropy of the discriminator's ``logits [B, T]`` against
    ``is_replaced`` over the real positions of ``mask`` (padding has no loss)."""
    return F.binary_cross_entropy_with_logits(
        logits[mask].float(), is_replaced[mask].float()
    )
