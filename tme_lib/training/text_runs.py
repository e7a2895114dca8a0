"""How a text chapter turns a :class:`~tme_lib.training.spec.Spec` into a recorded run.

The chapters on IMDB (data and training loop, TME 9, TME 10) differ in their models and plans,
not in this: read the reviews of ``spec.data``, the vectors of ``spec.inputs``, build the model
``spec.model`` from the chapter's registry on those vectors, batch with ``spec.training``, then
load the record or train (:func:`tme_lib.training.records.load_or_train`).
"""

from __future__ import annotations

import json

import torch
from torch import nn

from ..data.batching import BucketLoader, make_loaders
from ..data.corpus import load_corpus, probe_indices
from ..data.text import Corpus
from ..data.vectors import load_vectors
from . import bag_of_words
from .records import RunRecord, load_or_fit, load_or_train
from .spec import Spec

_VECTORS: dict[str, torch.Tensor] = {}


def text_data(spec: Spec) -> tuple[Corpus, torch.Tensor]:
    """The reviews and the frozen vectors of ``spec`` (each loaded once per process)."""
    corpus = load_corpus(spec.data)
    key = json.dumps([spec.data, spec.inputs], sort_keys=True)
    if key not in _VECTORS:
        _VECTORS[key] = load_vectors(corpus.vocab, **spec.inputs)
    return corpus, _VECTORS[key]


def build_text_model(
    spec: Spec, models: dict[str, type], vectors: torch.Tensor
) -> nn.Module:
    """The model ``spec.model["name"]`` of the registry ``models`` on frozen ``vectors``, with
    the constructor arguments of ``spec.model``."""
    if spec.model_name not in models:
        raise KeyError(
            f"unknown model {spec.model_name!r} in {spec.chapter}; choose one of "
            f"{', '.join(models)}."
        )
    return models[spec.model_name](vectors, **spec.model_kwargs)


def text_loaders(spec: Spec, corpus: Corpus):
    """Train, validation and test loaders of ``spec``, and the probe of its data section (the
    fixed reviews of the entropy histograms) as ``.probe``."""
    t = spec.training
    loaders = make_loaders(
        corpus,
        t.batch_size,
        spec.seed,
        t.eval_batch_size,
        val_order=t.val_order,
        chunk_batches=t.chunk_batches,
    )
    loaders.probe = {
        split: BucketLoader(
            getattr(corpus, split).subset(index), t.eval_batch_size, shuffle=False
        )
        for split, index in probe_indices(spec.data, corpus).items()
    }
    return loaders


def run_text(
    spec: Spec,
    models: dict[str, type],
    progress: bool = True,
    retrain: bool = False,
    device=None,
) -> RunRecord:
    """Load the record of ``spec`` if it exists, else train it and record it."""
    corpus, vectors = text_data(spec)
    return load_or_train(
        spec,
        lambda: build_text_model(spec, models, vectors),
        lambda: text_loaders(spec, corpus),
        device=device,
        progress=progress,
        retrain=retrain,
    )


def run_bag_of_words(spec: Spec, retrain: bool = False) -> RunRecord:
    """Load the record of the bag-of-words baseline ``spec`` (its ``model`` section holds the
    :class:`~tme_lib.training.bag_of_words.BagOfWords` settings), else fit it on the reviews of
    ``spec.data`` (:func:`tme_lib.training.records.load_or_fit`)."""
    model, corpus = bag_of_words.BagOfWords(**spec.model_kwargs), load_corpus(spec.data)
    return load_or_fit(spec, lambda: bag_of_words.fit(model, corpus), retrain=retrain)
