"""The pretraining checkers accept correct answers written otherwise than the library's, and
reject each plausible wrong answer with the message for that mistake."""

import pytest
import torch
import torch.nn.functional as F

from tme_lib.blocks.masked_lm import IGNORE, mask_tokens, masked_lm_loss
from tme_lib.checkers import ExerciseError
from tme_lib.checkers.pretraining import check_mask_tokens, check_masked_lm_loss


def other_masking(x, mask, mask_id, first_word, vocab_size, rate=0.15, generator=None):
    """Correct, drawn otherwise: Bernoulli draws, then one multinomial per chosen token."""
    eligible = mask & (x >= first_word)
    chosen = (
        torch.bernoulli(torch.full(x.shape, rate), generator=generator).bool() & eligible
    )
    labels = x.masked_fill(~chosen, IGNORE)
    kind = torch.multinomial(
        torch.tensor([0.8, 0.1, 0.1]), x.numel(), replacement=True, generator=generator
    ).view(x.shape)
    words = torch.randint(first_word, vocab_size, x.shape, generator=generator)
    inputs = x.clone()
    inputs[chosen & (kind == 0)] = mask_id
    inputs[chosen & (kind == 1)] = words[chosen & (kind == 1)]
    return inputs, labels


def masking_with(
    *,
    choose=None,
    labels_all=False,
    in_place=False,
    rate_fixed=False,
    all_mask=False,
    random_any=False,
    no_generator=False,
    per_batch=False,
):
    def fn(x, mask, mask_id, first_word, vocab_size, rate=0.15, generator=None):
        g = None if no_generator else generator
        r = 0.15 if rate_fixed else rate
        draw = torch.rand(x.shape, generator=g)
        if per_batch:
            draw = torch.rand(1, generator=g).expand(x.shape)
        eligible = choose(x, mask, first_word) if choose else mask & (x >= first_word)
        chosen = (draw < r) & eligible
        labels = x.clone() if labels_all else torch.where(chosen, x, IGNORE)
        kind = torch.rand(x.shape, generator=g)
        low = 0 if random_any else first_word
        words = torch.randint(low, vocab_size, x.shape, generator=g)
        target = x if in_place else x.clone()
        as_mask = chosen if all_mask else chosen & (kind < 0.8)
        target[as_mask] = mask_id
        swap = chosen & (kind >= 0.8) & (kind < 0.9) & ~as_mask
        target[swap] = words[swap]
        return target, labels

    return fn


@pytest.mark.parametrize("fn", [mask_tokens, other_masking], ids=["library", "other"])
def test_correct_maskings_pass(fn, capsys):
    check_mask_tokens(fn)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, message",
    [
        (masking_with(choose=lambda x, m, f: torch.ones_like(m)), "padding was chosen"),
        (masking_with(choose=lambda x, m, f: m), "special token"),
        (masking_with(per_batch=True), "none or all of the words"),
        (masking_with(labels_all=True), "labels keep the token"),
        (masking_with(in_place=True), "in place"),
        (masking_with(rate_fixed=True), "rate=0.3"),
        (masking_with(all_mask=True), "80 % mask token"),
        (masking_with(random_any=True), "random replacement"),
        (masking_with(no_generator=True), "generator"),
    ],
    ids=[
        "masks-padding",
        "masks-specials",
        "rate-per-batch",
        "labels-everywhere",
        "in-place",
        "ignores-rate",
        "all-mask-token",
        "random-specials",
        "ignores-generator",
    ],
)
def test_each_wrong_masking_gets_its_message(fn, message):
    with pytest.raises(ExerciseError, match=message):
        check_mask_tokens(fn)


def ce_ignore_index(logits, labels):
    """Correct: PyTorch's ignore_index, with the empty case handled."""
    flat = logits.reshape(-1, logits.shape[-1])
    if (labels == IGNORE).all():
        return flat.sum() * 0
    return F.cross_entropy(flat, labels.reshape(-1), ignore_index=IGNORE)


def over_every_position(logits, labels):
    keep = labels != IGNORE
    ce = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels.clamp_min(0).reshape(-1),
        reduction="none",
    )
    return (ce * keep.reshape(-1)).sum() / labels.numel()


def summed(logits, labels):
    keep = labels != IGNORE
    return F.cross_entropy(logits[keep], labels[keep], reduction="sum")


def nan_when_empty(logits, labels):
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
    )


def in_place(logits, labels):
    keep = labels != IGNORE
    loss = F.cross_entropy(logits[keep], labels[keep]) if keep.any() else logits.sum() * 0
    labels[~keep] = 0
    return loss


def as_float(logits, labels):
    return float(masked_lm_loss(logits, labels))


def ignored_as_class_zero(logits, labels):
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.clamp_min(0).reshape(-1)
    )


@pytest.mark.parametrize(
    "fn", [masked_lm_loss, ce_ignore_index], ids=["library", "ignore_index"]
)
def test_correct_losses_pass(fn, capsys):
    check_masked_lm_loss(fn)
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, message",
    [
        (over_every_position, "divide by every position"),
        (summed, "sum over the chosen positions"),
        (nan_when_empty, "must cost 0"),
        (in_place, "in place"),
        (as_float, "0-dimensional tensor"),
        (ignored_as_class_zero, "expected"),
    ],
    ids=[
        "every-position",
        "sum",
        "nan-when-empty",
        "in-place",
        "float",
        "ignore-as-class-0",
    ],
)
def test_each_wrong_loss_gets_its_message(fn, message):
    with pytest.raises(ExerciseError, match=message):
        check_masked_lm_loss(fn)
