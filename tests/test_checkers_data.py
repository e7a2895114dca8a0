"""The padding checker rejects the stub and plausible mistakes, and accepts the solution."""

import pytest
import torch

from tme_lib.checkers import ExerciseError
from tme_lib.checkers.data import check_pad_batch


def solution(sequences):
    lengths = torch.tensor([len(s) for s in sequences])
    mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]
    x = torch.zeros(mask.shape, dtype=torch.long)
    x[mask] = torch.cat([torch.as_tensor(s) for s in sequences]).long()
    return x, mask


def stub(sequences):
    raise NotImplementedError("pad each sequence with zeros to the longest one")


def inverted_mask(sequences):
    x, mask = solution(sequences)
    return x, ~mask


def left_padding(sequences):
    x, mask = solution(sequences)
    return x.flip(1), mask.flip(1)


def oov_is_padding(sequences):
    x, mask = solution(sequences)
    return x, mask & (x > 1)


def pads_with_oov(sequences):
    x, mask = solution(sequences)
    return x.masked_fill(~mask, 1), mask


def test_accepts_the_solution(capsys):
    check_pad_batch(solution)
    assert "✓" in capsys.readouterr().out


def float_ids(sequences):
    x, mask = solution(sequences)
    return x.float(), mask


def off_by_one(sequences):
    lengths = torch.tensor([len(s) for s in sequences])
    x, _ = solution(sequences)
    return x, torch.arange(x.shape[1])[None, :] <= lengths[:, None]


def crashes(sequences):
    # sequences of different lengths cannot be stacked
    return torch.stack(sequences), None


@pytest.mark.parametrize(
    "wrong, message",
    [
        (stub, "not implemented"),
        (inverted_mask, "inverted"),
        (left_padding, "right padding"),
        (oov_is_padding, "OOV tokens"),
        (pads_with_oov, "padding id 0"),
        (float_ids, "integer token ids, torch.long"),
        (off_by_one, "off by one"),
        (crashes, r"crashes raised RuntimeError .* called with a list of 3"),
    ],
)
def test_rejects_stub_and_wrong_answers_naming_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_pad_batch(wrong)
