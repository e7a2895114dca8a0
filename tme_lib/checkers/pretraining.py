"""Checkers of the exercises of "Pretraining" (``notebooks/05_pretraining``).

``check_mask_tokens(fn)`` tests the student's masking of a batch against the rules of
:func:`tme_lib.blocks.masked_lm.mask_tokens` (masking is random, so the checks are the rules
and the shares, measured on large batches, not equality with the library's draw);
``check_masked_lm_loss(fn)`` compares the student's loss with
:func:`tme_lib.blocks.masked_lm.masked_lm_loss`. Each names the usual mistake when it sees one.
"""

from __future__ import annotations

import torch

from tme_lib.blocks.masked_lm import IGNORE, MASK_RATE, masked_lm_loss

from . import ExerciseError, call_student, checker, passed

MASK_ID, FIRST_WORD, VOCAB = 2, 4, 1000


def _batch(
    b: int, t: int, seed: int, vocab: int = VOCAB
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids ``[b, t]`` with a CLS token first, an unknown word (id 1) here and there, and the
    second half of the rows padded from the middle."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(FIRST_WORD, vocab, (b, t), generator=g)
    x[:, 0] = 3
    x[torch.rand(b, t, generator=g) < 0.05] = 1
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[b // 2 :, t // 2 :] = False
    x[~mask] = 0
    return x, mask


def _masked(fn, x, mask, rate=MASK_RATE, seed=0, vocab=VOCAB):
    out = call_student(
        fn,
        x,
        mask,
        MASK_ID,
        FIRST_WORD,
        vocab,
        rate=rate,
        generator=torch.Generator().manual_seed(seed),
    )
    name = "mask_tokens"
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExerciseError(
            f"{name}: return a tuple (inputs, labels), got {type(out).__name__}."
        )
    for what, value in zip(("inputs", "labels"), out):
        if not isinstance(value, torch.Tensor) or value.shape != x.shape:
            raise ExerciseError(
                f"{name}: {what} must be a tensor of the batch's shape {tuple(x.shape)}."
            )
        if value.dtype != torch.long:
            raise ExerciseError(f"{name}: {what} must hold token ids (torch.long).")
    return out


@checker
def check_mask_tokens(fn) -> None:
    """``fn(x, mask, mask_id, first_word, vocab_size, rate=0.15, generator=None) ->
    (inputs, labels)``."""
    name = "mask_tokens"
    x, mask = _batch(64, 300, seed=0)
    x0, mask0 = x.clone(), mask.clone()
    inputs, labels = _masked(fn, x, mask)
    if not torch.equal(x, x0) or not torch.equal(mask, mask0):
        raise ExerciseError(
            f"{name}: your function changed the caller's batch in place; work on copies "
            "(torch.where, or x.clone()) and leave x and mask as they were."
        )
    chosen = labels != IGNORE
    eligible = mask & (x >= FIRST_WORD)
    if chosen.all() or (labels == x).mean(dtype=torch.float) > 0.9:
        raise ExerciseError(
            f"{name}: the labels keep the token at (almost) every position; a position that "
            f"was not chosen gets the label {IGNORE}, so that it costs nothing."
        )
    if not (chosen & eligible).any() or (chosen | ~eligible).all():
        raise ExerciseError(
            f"{name}: none or all of the words of the batch were chosen: the rate applies to "
            "each token independently (one uniform number per token), not to the batch as "
            "a whole."
        )
    if (labels[chosen] != x[chosen]).any():
        raise ExerciseError(
            f"{name}: at a chosen position the label must be the original token x (what the "
            f"model must guess), and {IGNORE} everywhere else."
        )
    if chosen[~mask].any():
        raise ExerciseError(
            f"{name}: padding was chosen; choose among real tokens only (mask)."
        )
    if chosen[x < FIRST_WORD].any():
        raise ExerciseError(
            f"{name}: a special token (an id below first_word: CLS, unknown word) was chosen; "
            "choose real words only (x >= first_word)."
        )
    share = chosen.sum().item() / eligible.sum().item()
    if abs(share - MASK_RATE) > 0.015:
        raise ExerciseError(
            f"{name}: {share:.1%} of the real words were chosen, not about {MASK_RATE:.0%}: draw "
            "one uniform number per token and choose it when the number is below rate."
        )
    shares = []
    for seed in range(1, 25):  # small batches: a rate drawn once per batch shows here
        xs, ms = _batch(4, 40, seed)
        _, ls = _masked(fn, xs, ms, seed=seed)
        shares.append(
            (ls != IGNORE).sum().item() / (ms & (xs >= FIRST_WORD)).sum().item()
        )
    if min(shares) == 0.0 or max(shares) == 1.0:
        raise ExerciseError(
            f"{name}: some batches had none or all of their words chosen: the rate applies to "
            "each token independently, not to the batch as a whole."
        )
    shown = inputs[chosen]
    masked, kept = (shown == MASK_ID).float().mean(), (shown == x[chosen]).float().mean()
    if not (abs(masked - 0.8) < 0.03 and abs(kept - 0.1) < 0.03):
        raise ExerciseError(
            f"{name}: of the chosen words {masked:.0%} became the mask token and {kept:.0%} "
            "stayed as they were; the rule is 80 % mask token, 10 % a random word, 10 % "
            "unchanged (one more uniform number per chosen token)."
        )
    small_x, small_mask = _batch(64, 300, seed=5, vocab=FIRST_WORD + 4)  # 4 words only
    small_inputs, small_labels = _masked(fn, small_x, small_mask, vocab=FIRST_WORD + 4)
    small_shown = small_inputs[small_labels != IGNORE]
    shown_all = torch.cat([shown, small_shown])
    if (shown_all < FIRST_WORD).logical_and(shown_all != MASK_ID).any():
        raise ExerciseError(
            f"{name}: a random replacement was padding or a special token; draw it from the "
            "words, ids first_word to vocab_size - 1."
        )
    if not torch.equal(inputs[~chosen], x[~chosen]):
        raise ExerciseError(
            f"{name}: a position that was not chosen was changed; only chosen positions are "
            "replaced."
        )
    _, labels_30 = _masked(fn, x, mask, rate=0.3)
    if abs((labels_30 != IGNORE).sum().item() / eligible.sum().item() - 0.3) > 0.02:
        raise ExerciseError(
            f"{name}: with rate=0.3 about 30 % must be chosen; use the argument."
        )
    again = _masked(fn, x, mask)
    if not (torch.equal(again[0], inputs) and torch.equal(again[1], labels)):
        raise ExerciseError(
            f"{name}: two calls with generators seeded alike gave different masks: pass "
            "generator to every random draw (torch.rand(..., generator=generator))."
        )
    passed(name)


@checker
def check_masked_lm_loss(fn) -> None:
    """``fn(logits [..., V], labels [...]) -> loss``: the mean cross-entropy over the chosen
    positions only."""
    name = "masked_lm_loss"
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 11, generator=g)
    labels = torch.full((3, 7), IGNORE)
    chosen = torch.rand(3, 7, generator=g) < 0.3
    chosen[0, 0] = True
    labels[chosen] = torch.randint(0, 11, (int(chosen.sum()),), generator=g)
    logits0, labels0 = logits.clone(), labels.clone()
    logits.requires_grad_(True)
    got = call_student(fn, logits, labels)
    want = masked_lm_loss(logits.detach(), labels)
    if not isinstance(got, torch.Tensor) or got.dim() != 0:
        raise ExerciseError(
            f"{name}: return one number, a 0-dimensional tensor (a mean)."
        )
    if not torch.equal(logits.detach(), logits0) or not torch.equal(labels, labels0):
        raise ExerciseError(f"{name}: your function changed its inputs in place.")
    n, every = int(chosen.sum()), labels.numel()
    if not torch.isfinite(got):
        raise ExerciseError(
            f"{name}: the loss is {got.item()}; it must be a finite number."
        )
    if abs(got.item() - want.item() * n / every) < 1e-5:
        raise ExerciseError(
            f"{name}: you divide by every position ({every}); the mean is over the {n} "
            "chosen positions only."
        )
    if abs(got.item() - want.item() * n) < 1e-4:
        raise ExerciseError(
            f"{name}: this is the sum over the chosen positions; take the mean."
        )
    if abs(got.item() - want.item()) > 1e-5:
        raise ExerciseError(
            f"{name}: got {got.item():.5f}, expected {want.item():.5f}: the mean of "
            f"-log softmax(logits)[label] over the positions whose label is not {IGNORE} "
            "(positions left out cost nothing)."
        )
    if not got.requires_grad:
        raise ExerciseError(
            f"{name}: the loss must stay differentiable (no .item(), no numpy)."
        )
    got.backward()
    if logits.grad[~chosen].abs().max() > 0:
        raise ExerciseError(f"{name}: positions that were not chosen receive a gradient.")
    flat = call_student(fn, logits.detach()[chosen], labels[chosen])
    if abs(float(flat) - want.item()) > 1e-5:
        raise ExerciseError(
            f"{name}: with logits [N, V] and labels [N] (positions already selected) the loss "
            "differs: flatten any leading dimensions, e.g. logits.reshape(-1, V)."
        )
    nothing = call_student(fn, logits.detach(), torch.full((3, 7), IGNORE))
    if not torch.isfinite(torch.as_tensor(nothing)) or float(nothing) != 0.0:
        raise ExerciseError(
            f"{name}: a batch where no position was chosen must cost 0, not "
            f"{float(nothing)} (a mean over nothing is NaN: test for it)."
        )
    passed(name)
