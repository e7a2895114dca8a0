"""The trainer on a tiny task it can learn: label = does token 3 occur in the sequence?"""

from types import SimpleNamespace

import pytest
import torch

from tme_lib.data.batching import Batch
from tme_lib.training.spec import Spec, Training
from tme_lib.training.trainer import checkpoint_path, evaluate, train


class BagOfTokens(torch.nn.Module):
    """Uniform attention over real tokens, then a linear classifier on the mean embedding."""

    def __init__(self, vocab=8, broken=False):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 4, padding_idx=0)
        self.out = torch.nn.Linear(4, 1)
        self.broken = broken

    def forward(self, x, mask):
        w = mask.float() / mask.float().sum(1, keepdim=True)
        logit = self.out((w.unsqueeze(-1) * self.emb(x)).sum(1)).squeeze(-1)
        return (logit * float("nan") if self.broken else logit), w


def make_loaders(n=256, seed=0, random_labels=False):
    g = torch.Generator().manual_seed(seed)

    def split(n):
        x = torch.randint(1, 8, (n, 6), generator=g)
        mask = torch.ones_like(x, dtype=torch.bool)
        mask[: n // 2, 4:] = False
        x[~mask] = 0
        y = (x == 3).any(1).float()
        if random_labels:
            y = torch.randint(0, 2, (n,), generator=g).float()
        return [
            Batch(x[i : i + 32], mask[i : i + 32], y[i : i + 32]) for i in range(0, n, 32)
        ]

    return SimpleNamespace(train=split(n), val=split(n // 2), test=split(n // 2))


def make_spec(chapter="test", name="bag", seed=0, model="bag", **training) -> Spec:
    """A spec for the tiny task: ``training`` keywords go to :class:`Training`."""
    training = {**dict(epochs=4, lr=0.05, entropy_sample=20), **training}
    return Spec(
        chapter=chapter,
        name=name,
        seed=seed,
        data={"dataset": "bag-of-tokens"},
        inputs={},
        model={"name": model, "vocab": 8},
        training=Training(**training),
    )


cfg = make_spec


def test_learns_and_records_history():
    torch.manual_seed(0)
    out = train(cfg(), BagOfTokens(), make_loaders(), device="cpu", progress=False)
    h = out["history"]
    assert len(h) == 4
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert out["final"]["test_acc"] > 0.75
    assert len(h[0]["val_entropy_sample"]) == 20
    assert 0 < out["final"]["mean_entropy"] <= torch.log(torch.tensor(6.0)).item() + 1e-6


def test_final_metrics_come_from_the_best_validation_epoch():
    out = train(cfg(), BagOfTokens(), make_loaders(), device="cpu", progress=False)
    best = max(out["history"], key=lambda e: e["val_acc"])
    assert out["final"]["val_acc"] == best["val_acc"]
    assert out["final"]["best_epoch"] == best["epoch"]


def test_non_finite_loss_stops_with_a_clear_message():
    with pytest.raises(FloatingPointError, match="learning rate"):
        train(
            cfg(name="nan"),
            BagOfTokens(broken=True),
            make_loaders(),
            device="cpu",
            progress=False,
        )


def test_entropy_penalty_needs_attention_weights():
    class NoWeights(BagOfTokens):
        def forward(self, x, mask):
            return super().forward(x, mask)[0], None

    with pytest.raises(ValueError, match="attention weights"):
        train(
            cfg(name="nw", entropy_weight=0.1),
            NoWeights(),
            make_loaders(),
            device="cpu",
            progress=False,
        )


def test_early_stopping_on_validation():
    out = train(
        cfg(name="es", epochs=30, patience=2),
        BagOfTokens(),
        make_loaders(random_labels=True),
        device="cpu",
        progress=False,
    )
    assert len(out["history"]) < 30


class Interrupt(Exception):
    pass


class InterruptingLoader(list):
    """Raises in the middle of the second epoch, as a killed process would stop."""

    def __init__(self, batches):
        super().__init__(batches)
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        for i, b in enumerate(super().__iter__()):
            if self.passes == 2 and i == 2:
                raise Interrupt
            yield b


def test_resume_after_interruption_gives_the_same_run():
    reference = train(
        cfg(name="resume-ref"),
        BagOfTokens(),
        make_loaders(),
        device="cpu",
        progress=False,
    )

    loaders = make_loaders()
    loaders.train = InterruptingLoader(loaders.train)
    c = cfg(name="resume")
    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        train(c, BagOfTokens(), loaders, device="cpu", progress=False)
    resumed = train(c, BagOfTokens(), make_loaders(), device="cpu", progress=False)
    assert [e["epoch"] for e in resumed["history"]] == [1, 2, 3, 4]
    assert resumed["history"][-1]["train_loss"] == pytest.approx(
        reference["history"][-1]["train_loss"]
    )


def test_sgd_and_regression():
    loaders = make_loaders()
    out = train(
        cfg(name="reg", task="regression", optimizer="sgd", momentum=0.9, lr=0.05),
        BagOfTokens(),
        loaders,
        device="cpu",
        progress=False,
    )
    assert {"test_mse", "test_r2", "pearson", "spearman"} <= set(out["final"])
    assert out["final"]["test_mse"] == pytest.approx(out["final"]["test_loss"])
    assert "val_r2" in out["history"][0]


def test_evaluate_asks_for_weights_and_restores_the_flag():
    class Lazy(BagOfTokens):
        need_weights = False

        def forward(self, x, mask):
            logit, w = super().forward(x, mask)
            return logit, (w if self.need_weights else None)

    model = Lazy()
    res = evaluate(model, make_loaders().val, device="cpu")
    assert "val_entropy" in res and model.need_weights is False


def test_entropy_every_samples_batches_but_scores_all_of_them():
    class Lazy(BagOfTokens):
        need_weights = False
        calls = 0

        def forward(self, x, mask):
            logit, w = super().forward(x, mask)
            Lazy.calls += self.need_weights
            return logit, (w if self.need_weights else None)

    model = Lazy()
    # 4 batches of 32; the first two have 2 padding tokens each
    val = make_loaders(n=256).val
    every = evaluate(model, val, device="cpu", entropy_sample=1000)
    Lazy.calls = 0
    sampled = evaluate(model, val, device="cpu", entropy_sample=1000, entropy_every=3)
    assert Lazy.calls == 2  # batches 0 and 3
    # loss over every batch
    assert sampled["val_loss"] == pytest.approx(every["val_loss"])
    assert sampled["val_acc"] == every["val_acc"]
    assert (
        len(sampled["val_entropy_sample"]) == 64
        and len(every["val_entropy_sample"]) == 128
    )
    import math

    # uniform weights: log n per review
    expected = (32 * math.log(4) + 32 * math.log(6)) / 64
    assert sampled["val_entropy"] == pytest.approx(expected, rel=1e-4)


def test_corrupt_checkpoint_is_set_aside_and_the_run_starts_again(capsys):
    c = cfg(name="corrupt-ckpt")
    torch.manual_seed(0)
    reference = train(
        cfg(name="clean-ckpt"),
        BagOfTokens(),
        make_loaders(),
        device="cpu",
        progress=False,
    )
    checkpoint_path(c).write_bytes(b"not a checkpoint")
    torch.manual_seed(0)
    out = train(c, BagOfTokens(), make_loaders(), device="cpu", progress=False)
    assert "starts from scratch" in capsys.readouterr().out
    assert checkpoint_path(c).with_suffix(".corrupt").exists()
    assert [e["epoch"] for e in out["history"]] == [1, 2, 3, 4]
    assert out["final"]["test_acc"] == reference["final"]["test_acc"]


def test_non_finite_loss_before_any_epoch_names_no_checkpoint():
    with pytest.raises(FloatingPointError, match="no checkpoint"):
        train(
            cfg(name="nan-first"),
            BagOfTokens(broken=True),
            make_loaders(),
            device="cpu",
            progress=False,
        )


def test_one_cycle_schedule_uses_every_parameter_of_the_spec():
    from tme_lib.training.spec import schedule
    from tme_lib.training.trainer import make_optimizer, make_scheduler

    def peak_start(**params):
        training = Training(lr=1.0, epochs=1, schedule=schedule("onecycle", **params))
        optimizer = make_optimizer(training, BagOfTokens().parameters())
        make_scheduler(training, optimizer, steps_per_epoch=10)
        return optimizer.param_groups[0]["lr"]

    assert peak_start() == pytest.approx(1 / 25)  # PyTorch's default div_factor
    assert peak_start(div_factor=10.0) == pytest.approx(1 / 10)


def test_get_device_flushes_denormals_on_the_cpu():
    """Denormal floats (below 1.2e-38, e.g. exp of very negative scores) slow x86 CPUs tens of
    times; get_device rounds them to 0."""
    from tme_lib import config

    if config.get_device(verbose=False).type != "cpu":
        pytest.skip("flushing concerns the CPU")
    assert (torch.tensor([1e-39]) * 1.0).item() == 0.0


def test_probe_measures_the_same_reviews_every_epoch_with_normalised_entropy():
    loaders = make_loaders()
    loaders.probe = {
        "train": loaders.train[:2],
        "val": loaders.val[:1],
    }  # 64 and 32 reviews
    out = train(
        cfg(name="probe", epochs=3), BagOfTokens(), loaders, device="cpu", progress=False
    )
    for entry in out["history"]:
        assert len(entry["train_entropy_sample"]) == 64
        assert len(entry["val_entropy_sample"]) == 32
        # uniform weights over n real tokens: H = log n, so H / log n = 1 for every review
        assert entry["val_entropy_norm_sample"] == pytest.approx([1.0] * 32, abs=1e-4)
    first, last = out["history"][0], out["history"][-1]
    # same reviews each epoch
    assert first["val_entropy_sample"] == last["val_entropy_sample"]


def test_text_runs_draw_the_probe_alike_for_train_and_validation():
    from tme_lib.chapters import tme9
    from tme_lib.data.corpus import probe_indices

    spec = tme9.spec("attention_simple")
    corpus = tme9.load_data(spec)[0]
    index = probe_indices(spec.data, corpus)
    assert {k: len(v) for k, v in index.items()} == {"train": 100, "val": 100}
    again = probe_indices(spec.data, corpus)
    assert all((index[k] == again[k]).all() for k in index)
    other = probe_indices({**spec.data, "split_seed": 1}, corpus)
    assert not (other["train"] == index["train"]).all()
