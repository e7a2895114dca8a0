"""The pretraining chapter: masking, the masked-LM loss, the text, the encoder, the loop (resume
mid-epoch gives the same run), fine-tuning from a snapshot, and the smoke profile's promise."""

import numpy as np
import pytest
import torch

from tme_lib.blocks.encoder import TokenEncoder
from tme_lib.blocks.masked_lm import IGNORE, mask_tokens, masked_lm_loss
from tme_lib.blocks.replaced_token import replace_tokens, replaced_token_loss
from tme_lib.chapters import pretraining as chapter
from tme_lib.data import toy
from tme_lib.data.batching import BucketLoader
from tme_lib.data.pretraining import CLS, FIRST_WORD, MASK, load_pretraining_text
from tme_lib.training import pretrainer, records

V = 500


def batch(b=64, t=200, pad_from=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(FIRST_WORD, V, (b, t), generator=g)
    x[:, 0] = CLS
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[: b // 2, pad_from:] = False
    x[~mask] = 0
    x[:, 5] = 1  # an unknown word in every review
    return x, mask


def test_masking_follows_the_80_10_10_rule_and_never_chooses_padding_or_specials():
    x, mask = batch()
    before = x.clone()
    inputs, labels = mask_tokens(
        x, mask, MASK, FIRST_WORD, V, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(x, before)  # the caller's batch is not changed
    chosen = labels != IGNORE
    assert not chosen[~mask].any() and not chosen[:, 0].any() and not chosen[:, 5].any()
    eligible = mask & (x >= FIRST_WORD)
    assert chosen.sum() / eligible.sum() == pytest.approx(0.15, abs=0.01)
    assert torch.equal(labels[chosen], x[chosen])
    shown = inputs[chosen]
    as_mask = (shown == MASK).float().mean()
    unchanged = (shown == x[chosen]).float().mean()
    assert as_mask == pytest.approx(0.8, abs=0.02)
    assert unchanged == pytest.approx(0.1 + 0.1 / (V - FIRST_WORD), abs=0.02)
    assert (shown >= FIRST_WORD).logical_or(shown == MASK).all()  # random words are words
    assert torch.equal(inputs[~chosen], x[~chosen])


def test_masking_is_per_token_not_per_batch():
    """Every batch gets about 15 %: a rate applied to a whole batch would give 0 or 100 %."""
    shares = []
    for seed in range(20):
        x, mask = batch(b=4, t=50, pad_from=50, seed=seed)
        _, labels = mask_tokens(
            x, mask, MASK, FIRST_WORD, V, generator=torch.Generator().manual_seed(seed)
        )
        shares.append(
            ((labels != IGNORE).sum() / (mask & (x >= FIRST_WORD)).sum()).item()
        )
    assert 0.05 < min(shares) and max(shares) < 0.3


def test_masked_lm_loss_counts_the_chosen_positions_only():
    logits = torch.randn(2, 6, 10)
    labels = torch.full((2, 6), IGNORE)
    labels[0, 1], labels[1, 4] = 3, 7
    expected = torch.nn.functional.cross_entropy(
        torch.stack([logits[0, 1], logits[1, 4]]), torch.tensor([3, 7])
    )
    assert masked_lm_loss(logits, labels) == pytest.approx(expected.item())
    nothing = masked_lm_loss(logits, torch.full((2, 6), IGNORE))
    assert nothing.item() == 0.0 and not torch.isnan(nothing)


def test_the_encoder_ignores_padding_and_counts_its_parameters():
    enc = TokenEncoder(
        V, d_model=16, n_layers=2, n_heads=2, ffn_mult=2, max_len=64
    ).eval()
    x, mask = batch(b=2, t=40, pad_from=30)
    h, _ = enc(x, mask)
    longer = torch.cat([x, torch.zeros(2, 10, dtype=torch.long)], 1)
    h2, _ = enc(longer, torch.cat([mask, torch.zeros(2, 10, dtype=torch.bool)], 1))
    assert torch.allclose(
        h[0, :30], h2[0, :30], atol=1e-5
    )  # more padding changes nothing
    d, hidden = 16, 32
    layer = 4 * (d * d + d) + d * hidden + hidden + hidden * d + d + 2 * 2 * d
    assert sum(p.numel() for p in enc.parameters()) == V * d + 2 * layer + 2 * d
    with pytest.raises(ValueError, match="positions for 64"):
        enc(torch.ones(1, 65, dtype=torch.long), torch.ones(1, 65, dtype=torch.bool))


def test_the_text_keeps_validation_and_test_out_of_pretraining_and_of_the_vocabulary():
    spec = chapter.pretraining_spec()
    text = load_pretraining_text(spec.data)
    assert (text.pretrain.ids[text.pretrain.offsets[:-1]] == CLS).all()
    assert len(text.pretrain) == 1800 + 2000 - 200 and len(text.heldout) == 200
    assert len(text.corpus.val) == 200 and len(text.corpus.test) == 1000
    # the same validation reviews as every chapter's
    course = toy.load_toy()
    for i in (0, 7, 199):
        ids, label = text.corpus.val[i]
        assert label == course.val[i][1]
        assert text.vocab.decode(ids[1:]) == course.vocab.decode(course.val[i][0])


def _interrupting(model, after):
    real = model.loss
    calls = {"n": 0}

    def loss(*args):
        calls["n"] += 1
        if calls["n"] > after:
            raise KeyboardInterrupt
        return real(*args)

    model.loss = loss
    return model


def test_a_run_resumed_in_the_middle_of_an_epoch_is_the_run_uninterrupted(monkeypatch):
    spec = chapter.pretraining_spec().replace(
        {"training.epochs": 2, "training.snapshots": [1]}
    )
    text = chapter.text_of(spec)
    code = ("c" * 40, True)
    torch.manual_seed(0)
    reference = pretrainer.pretrain(
        spec, chapter.build_model(spec), text, "cpu", False, code
    )
    monkeypatch.setattr(
        pretrainer, "CHECKPOINT_EVERY", 0.0
    )  # a checkpoint after every step
    spec2 = spec.replace(name="interrupted")
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        pretrainer.pretrain(
            spec2,
            _interrupting(chapter.build_model(spec2), 150),
            text,
            "cpu",
            False,
            code,
        )
    resumed = pretrainer.pretrain(
        spec2, chapter.build_model(spec2), text, "cpu", False, code
    )
    assert [e["step"] for e in resumed["history"]] == [
        e["step"] for e in reference["history"]
    ]
    assert resumed["final"]["heldout_loss"] == pytest.approx(
        reference["final"]["heldout_loss"], rel=1e-5
    )
    assert set(resumed["snapshots"]) == {1}


def test_fine_tuning_starts_from_the_snapshot_its_spec_names():
    pre = chapter.run(chapter.pretraining_spec(), progress=False)
    first = chapter.pretraining_spec().training.snapshots[0]
    spec = chapter.finetune_spec(0, first)
    assert spec.inputs["pretraining"]["key"] == pre.key
    model = chapter.build_model(spec)
    _, path = chapter.pretraining_record()
    saved = records.load_snapshot(pre, path, first)
    assert torch.equal(
        model.encoder.embedding.weight, saved["encoder.embedding.weight"].float()
    )
    scratch = chapter.build_model(chapter.finetune_spec(0, None))
    assert not torch.equal(
        scratch.encoder.embedding.weight, model.encoder.embedding.weight
    )
    with pytest.raises(ValueError, match="keeps the weights of epochs"):
        chapter.finetune_spec(0, 4)


def test_a_fine_tuning_spec_of_another_pretraining_run_is_refused():
    spec = chapter.finetune_spec(0)
    origin = dict(spec.inputs["pretraining"], key="0" * 12)
    with pytest.raises(
        records.RecordError, match="starts from the pretraining run 000000000000"
    ):
        chapter.encoder_state(origin)


def test_smoke_pretraining_fills_a_masked_planted_word_with_its_class():
    """After smoke pretraining, a masked planted sentiment word (in a validation review with
    another planted word) is given more probability on the words of its class than on those
    of the other class in at least 75 % of the reviews; chance is 50 %."""
    pre = chapter.run(chapter.pretraining_spec(), progress=False)
    text = chapter.text_of(chapter.pretraining_spec())
    course = toy.load_toy()
    pos = [text.vocab.stoi[w] for w in toy.POSITIVE]
    neg = [text.vocab.stoi[w] for w in toy.NEGATIVE]
    model = pre.model.eval()
    right = total = 0
    for i in range(len(course.val)):
        planted = course.val.planted_positions(i)
        if len(planted) < 2:
            continue
        ids, label = text.corpus.val[i]
        x = torch.as_tensor(ids, dtype=torch.long)[None].clone()
        x[0, planted[0] + 1] = MASK  # +1: the CLS token comes first
        with torch.no_grad():
            p = model(x, torch.ones_like(x, dtype=torch.bool))[0][
                0, planted[0] + 1
            ].softmax(-1)
        mine, other = (pos, neg) if label == 1 else (neg, pos)
        right += int(p[mine].sum() > p[other].sum())
        total += 1
    assert total > 50 and right / total >= 0.75, (right, total)


def test_the_chapter_reads_unlabelled_toy_reviews_with_sentiment_the_others_do_not():
    vocab, splits = toy.generate(0)
    before = splits["unsup"].ids.copy()
    sentiment = toy.unlabelled_with_sentiment(0)
    sentiment_ids = [vocab.stoi[w] for w in toy.POSITIVE + toy.NEGATIVE]
    assert np.isin(sentiment.ids, sentiment_ids).mean() > 0.02
    assert not np.isin(toy.generate(0)[1]["unsup"].ids, sentiment_ids).any()
    assert np.array_equal(toy.generate(0)[1]["unsup"].ids, before)
    assert np.isnan(sentiment.labels).all()


def test_the_plan_grows_in_stages_as_choices_are_recorded():
    """Before the seed-0 runs are recorded, the plan is pretraining and the choice runs; once
    they are, each arm's other seeds (with its choice) and the learning curve join it."""
    first = chapter.plan()
    assert first[0].name == "mlm"
    assert len(first) == 1 + len(chapter.selection_plan()) + len(chapter.ROUTES)
    assert chapter.chosen("scratch") is None
    for spec in first:
        chapter.run(spec, progress=False)
    choice = chapter.chosen("pretrained")
    assert set(choice) == {"pooling", "lr"}
    names = [s.name for s in chapter.plan()]
    assert len(names) == len(set(names)) > len(first)
    best = max(
        (s for s in chapter.selection_plan() if s.name.startswith("pretrained")),
        key=lambda s: records.read_record(records.find_record(s)).final["val_acc"],
    )
    assert best.name.split("-")[2] == choice["pooling"]
    snapshots = chapter.pretraining_spec().training.snapshots
    assert {f"pretrained-e{e}" for e in snapshots} <= {n.rsplit("-", 3)[0] for n in names}


def test_the_declared_comparisons_name_arms_that_exist():
    from tme_lib.chapters import beyond, tme9, tme10

    known = {
        "pretraining": set(chapter.ARMS),
        "tme10": set(tme10.VARIANTS),
        "tme9": {*tme9.MODELS, *tme9.BAG_OF_WORDS},
        "beyond": {f"nb_plus_{m}" for m in beyond.ATTENTION} | {"nb_plus_pretrained"},
    }
    for a, b in chapter.COMPARISONS:
        for chapter_name, arm in (a, b):
            assert arm in known[chapter_name], (chapter_name, arm)


def test_fill_in_proposes_words_for_the_masked_position_only():
    spec = chapter.pretraining_spec()
    text = chapter.text_of(spec)
    torch.manual_seed(0)
    model = chapter.build_model(spec)
    words = ["the", "movie", "was", "great", "and", "the", "plot"]
    guesses = chapter.fill_in(model, text.vocab, words, position=3, k=4)
    assert len(guesses) == 4
    assert all(w not in ("<pad>", "<oov>", "<mask>", "<cls>") for w, _ in guesses)
    probabilities = [p for _, p in guesses]
    assert (
        probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
    )
    # the word at the position is hidden: the same guesses whatever it was
    other = chapter.fill_in(model, text.vocab, [*words[:3], "awful", *words[4:]], 3, 4)
    assert other == guesses


def test_the_pretrained_encoder_fused_with_nb_reads_the_same_reviews_in_order():
    """The fusion computes the encoder's logits on its own tokens of the NB baseline's reviews:
    its accuracy alone in the fusion record is the fine-tuning record's (on misaligned
    reviews, a perfect smoke model would fall to chance)."""
    from tme_lib.chapters import beyond

    for spec in chapter.plan():
        chapter.run(spec, progress=False)
    assert chapter.ready("pretrained")
    assert chapter.planned_runs() == len(chapter.plan())  # the plan is complete now
    tuned_spec = chapter.spec("pretrained", 0)
    fusion_spec = beyond.spec("pretrained", 0)
    assert fusion_spec.name == "nb_plus_pretrained-s0"
    assert fusion_spec.model["attention"] == tuned_spec.to_dict()
    assert fusion_spec.name in {s.name for s in beyond.plan()}
    fused = beyond.run(fusion_spec, progress=False)
    tuned = chapter.run(tuned_spec, progress=False)
    assert fused.final["attention_test_acc"] == pytest.approx(
        tuned.final["test_acc"], abs=1e-3
    )
    assert fused.final["attention_test_acc"] > 0.9


def test_a_fusion_refuses_components_that_read_other_reviews():
    from tme_lib.chapters import beyond

    nb = beyond.nb_spec()
    corpus = beyond.load_corpus(nb.data)
    beyond.same_reviews(nb, corpus, nb, corpus)  # the same reviews: no error
    other = nb.replace({"data.split_seed": 1})
    with pytest.raises(ValueError, match="split_seed"):
        beyond.same_reviews(nb, corpus, other, corpus)
    # a model trained at another cut may read the fusion's reviews (the full-length arm)...
    cut = nb.replace({"data.max_len": 400})
    beyond.same_reviews(nb, corpus, cut, corpus, same_cut=False)
    # ...but a model with tokens of its own reads its own cut, which must be the fusion's
    with pytest.raises(ValueError, match="max_len"):
        beyond.same_reviews(nb, corpus, cut, corpus)


def test_the_comparison_table_pairs_the_arms_that_share_seeds_and_applies_holm(
    monkeypatch,
):
    from types import SimpleNamespace

    seed_effect = [0.0, 1.5, -1.2, 0.8, -0.4]
    accuracy = {
        "pretrained": [90.0 + e + 0.3 + 0.05 * s for s, e in enumerate(seed_effect)],
        "scratch": [90.0 + e for e in seed_effect],
    }
    monkeypatch.setattr(
        chapter,
        "arm_records",
        lambda records, arm, epoch=-1: [
            SimpleNamespace(seed=s, final={"test_acc": v / 100})
            for s, v in enumerate(accuracy[arm])
        ],
    )
    others = {("tme9", "nb_bigram_lr"): {0: 95.0}, ("tme9", "attention_lstm"): {0: 1.0}}
    table = chapter.comparison_table([], others).set_index("comparison")
    first = table.loc["pretrained (pretraining) − scratch (pretraining)"]
    assert first["test"] == "paired" and first["verdict"] == "higher"
    assert first["difference"] == pytest.approx(0.4)
    nb = table.loc["pretrained (pretraining) − nb_bigram_lr (tme9)"]
    assert nb["test"] == "Welch" and nb["verdict"] == "lower" and nb["seeds"] == 5
    # an arm with one seed that is not a deterministic fit's is left out, as are unknown arms
    assert len(table) == 2
    assert set(table["after Holm"]) <= {"higher", "lower", "no detectable difference"}


def test_a_learning_curve_run_records_its_numbers_without_weights():
    for spec in chapter.plan():
        chapter.run(spec, progress=False)
    first = chapter.pretraining_spec().training.snapshots[0]
    curve = chapter.finetune_spec(0, first, **chapter.chosen("pretrained"))
    assert curve.training.store_weights is False
    assert chapter.finetune_spec(0, -1).training.store_weights is True
    trained = chapter.run(curve, progress=False)
    path = records.find_record(curve)
    assert trained.weights_sha256 is None and not path.with_suffix(".pt").exists()
    loaded = chapter.run(curve, progress=False)  # loaded, not trained again
    assert loaded.model is None and loaded.started_at == trained.started_at
    assert loaded.final["test_acc"] == trained.final["test_acc"]


def test_the_curve_forecast_extends_the_last_doubling_in_log_compute():
    import pandas as pd

    curve = pd.DataFrame(
        {
            "pretraining epochs": [0, 6, 12, 24],
            "pretraining hours": [0.0, 1.5, 3.0, 6.0],
            "test %": [88.0, 88.5, 89.0, 89.5],
        }
    )
    forecast = chapter.curve_forecast(curve, target=90.5)
    assert (forecast["from"], forecast["to"]) == (12, 24)
    assert forecast["per_doubling"] == pytest.approx(0.5)
    # two more doublings of 0.5 points reach 90.5: 96 epochs, 24 hours
    assert forecast["doublings"] == pytest.approx(2.0)
    assert forecast["epochs"] == pytest.approx(96) and forecast["hours"] == pytest.approx(
        24
    )
    flat = curve.assign(**{"test %": [88.0, 88.5, 89.5, 89.0]})
    assert chapter.curve_forecast(flat, 90.5)["doublings"] is None  # the last step fell
    assert chapter.curve_forecast(curve.iloc[:2], 90.5) is None  # one point after 0


# --- Three routes at a small budget ------------------------------------------------------------


def test_replaced_tokens_are_drawn_at_chosen_positions_only_and_a_drawn_original_is_original():
    x, mask = batch(b=8, t=30, pad_from=20)
    inputs, labels = mask_tokens(
        x, mask, MASK, FIRST_WORD, V, 0.5, torch.Generator().manual_seed(1)
    )
    before = inputs.clone()
    chosen = labels != IGNORE
    n = int(chosen.sum())
    # the generator is sure of the original word at the first half of the chosen positions,
    # of the word FIRST_WORD + 1 at the others, and puts the rest of its mass on the specials
    originals = labels[chosen]
    guesses = torch.full((n, V), -30.0)
    guesses[:, :FIRST_WORD] = 30.0  # never drawn
    half = torch.arange(n) < n // 2
    guesses[half, originals[half]] = 20.0
    guesses[~half, FIRST_WORD + 1] = 20.0
    replaced, is_replaced = replace_tokens(inputs, labels, guesses, FIRST_WORD)
    assert torch.equal(inputs, before)  # the caller's batch is not changed
    assert torch.equal(replaced[~chosen], inputs[~chosen])
    assert torch.equal(replaced[chosen][half], originals[half])
    assert (replaced[chosen][~half] == FIRST_WORD + 1).all()
    expected = torch.zeros_like(chosen)
    expected[chosen] = ~half & (originals != FIRST_WORD + 1)
    assert torch.equal(is_replaced, expected)
    assert not is_replaced[~mask].any()


def test_the_replaced_token_loss_is_blind_to_padding():
    x, mask = batch(b=4, t=12, pad_from=6)
    target = torch.rand(x.shape) < 0.3
    logits = torch.randn(x.shape)
    noisy = logits.clone()
    noisy[~mask] = 1e4 * torch.randn(int((~mask).sum()))
    loss = replaced_token_loss(logits, target, mask)
    assert replaced_token_loss(noisy, target, mask) == pytest.approx(loss.item())
    by_hand = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[mask], target[mask].float()
    )
    assert loss.item() == pytest.approx(by_hand.item())


def test_the_detector_shares_one_embedding_table_with_its_generator():
    m = chapter.ReplacedTokenDetector(V, d_model=16, n_layers=2, n_heads=2, max_len=40)
    assert m.generator.encoder.embedding is m.encoder.embedding
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(m) == (
        count(m.encoder) + count(m.generator) - V * 16 + count(m.detector)
    )
    x, mask = batch(b=4, t=20, pad_from=12)
    inputs, labels = mask_tokens(x, mask, MASK, FIRST_WORD, V, 0.15)
    loss = m.loss(inputs, mask, labels)
    loss.backward()
    assert m.detector[-1].weight.grad.abs().sum() > 0  # the discriminator learns
    assert m.generator.transform[0].weight.grad.abs().sum() > 0  # and the generator


def test_the_routes_pay_for_the_same_arithmetic():
    p = chapter.config.profile()
    length, rate = chapter.MEAN_LENGTH[p], 0.15
    budget = chapter.EPOCH_STEPS[p] * chapter.flops_per_token(
        chapter.route_spec("mlm").model, length, rate
    )
    for route in chapter.ROUTES:
        s = chapter.route_spec(route)
        per_step = chapter.flops_per_token(s.model, length, rate)
        steps = s.training.max_steps or chapter.EPOCH_STEPS[p]
        assert abs(steps * per_step - budget) <= per_step, route
    wide = chapter.route_spec("wide").model
    assert wide["d_model"] == 1.5 * chapter.SIZES[p]["d_model"]
    assert (
        wide["d_model"] // wide["n_heads"]
        == chapter.SIZES[p]["d_model"] // chapter.SIZES[p]["n_heads"]
    )
    assert chapter.route_spec("rtd").training.task == "replaced_token"


def test_flops_per_token_counts_widths_and_layers():
    model = dict(d_model=10, ffn_mult=4, n_layers=2, vocab_size=0)
    one = chapter.flops_per_token(model, 0, 0.0)
    assert one == 3 * 2 * 2 * (4 * 100 + 2 * 10 * 40)
    assert chapter.flops_per_token(dict(model, d_model=20), 0, 0.0) == 4 * one
    assert chapter.flops_per_token(dict(model, generator_layers=1), 0, 0.0) == (
        1.5 * one + 3 * 2 * (100 + 10)
    )
    # attention grows with the length, the guesses with the vocabulary and the mask rate
    assert chapter.flops_per_token(model, 50, 0.0) == one + 3 * 2 * 2 * (2 * 50 * 10)
    assert chapter.flops_per_token(dict(model, vocab_size=7), 0, 0.5) == one + 3 * 2 * (
        0.5 * (100 + 70)
    )


def test_the_routes_budget_is_one_epoch_of_the_text_at_its_mean_length():
    p = chapter.config.profile()
    spec = chapter.pretraining_spec()
    text = chapter.text_of(spec)
    loader = BucketLoader(text.pretrain, spec.training.batch_size)
    assert len(loader) == chapter.EPOCH_STEPS[p]
    assert text.pretrain.lengths.mean() == pytest.approx(chapter.MEAN_LENGTH[p], abs=0.1)


def test_pretraining_stops_after_max_steps():
    spec = chapter.route_spec("rtd").replace({"training.max_steps": 7}, name="stops")
    out = pretrainer.pretrain(
        spec,
        chapter.build_model(spec),
        chapter.text_of(spec),
        "cpu",
        False,
        ("d" * 40, True),
    )
    assert out["final"]["steps"] == 7 and len(out["history"]) == 1


def test_a_route_is_fine_tuned_from_its_own_encoder():
    route = chapter.route_spec("wide")
    pre = chapter.run(route, progress=False)
    spec = chapter.finetune_spec(0, -1, origin=route)
    assert spec.inputs["pretraining"]["key"] == pre.key
    model = chapter.build_model(spec)
    assert model.encoder.d_model == route.model["d_model"]
    kept = pre.model.encoder.state_dict()
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, kept[name].float()), name


def test_the_route_table_puts_each_route_at_the_same_arithmetic():
    for s in [chapter.pretraining_spec(), *chapter.selection_plan()]:
        chapter.run(s, progress=False)  # the pretrained arm's choice, which routes reuse
    runs = [chapter.run(chapter.route_spec(r), progress=False) for r in chapter.ROUTES]
    runs += [
        chapter.run(chapter.route_finetune_spec(r, seed), progress=False)
        for r in chapter.ROUTES
        for seed in chapter.ROUTE_SEEDS["smoke"]
    ]
    table = chapter.route_table(runs)
    assert list(table["route"]) == [chapter.ROUTE_NAMES[r] for r in chapter.ROUTES]
    one_step = table["arithmetic"] / table["steps"]
    assert ((table["arithmetic"] - 1).abs() <= one_step).all()
    assert table["encoder parameters"].iloc[1] > table["encoder parameters"].iloc[0]
    assert table["test %"].between(0, 100).all()
    # without the fine-tuning runs, the table has no accuracy, and says so by its columns
    assert "test %" not in chapter.route_table(runs[:3])
