# %% [markdown]
# # Data and training loop
#
# *Working on it yourself?* Download the {download}`student version of this chapter <../_generated/student/00_data_and_training.ipynb>`
# (exercises left as stubs, each with its checker; see the README), or open it in Colab on a
# GPU with the launch button (the rocket, top of the page): *Colab: your version* is the student
# notebook, *Colab: solved* this page.
#
# Before any attention, this chapter builds the pieces every later model stands on: the IMDB
# reviews {cite}`maas2011` turned into token ids, padded batches with a mask that tells real tokens
# from padding, frozen word vectors, and the one training loop of the course, which records every
# run so that the numbers of this book can be regenerated. It ends with the simplest sentiment
# classifier worth beating: the mean of the word vectors of a review, fed to a logistic regression.
#
# Everything here comes from `tme_lib`; the notebook shows how to use it and why it is built that
# way.

# %% tags=["remove-cell"]
# On Colab, or in any Python without the course's library, install it; elsewhere do nothing.
# TME_LIB_SOURCE may name another source for pip (a local wheel or checkout).
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("tme_lib") is None:
    source = os.environ.get(
        "TME_LIB_SOURCE", "tme_lib @ git+https://github.com/attention-hands-on/course"
    )
    print(f"Installing the course's library from {source} (a minute or two)...")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)

# %% tags=["nbval-ignore-output"]
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch

from tme_lib import config, plots
from tme_lib.chapters import data_and_training as chapter
from tme_lib.data.batching import BucketLoader
from tme_lib.data.text import OOV, PAD, tokenize
from tme_lib.data.vectors import nearest_neighbours
from tme_lib.plots import plot_learning_curves

plots.use_style()  # the course's figure style (tme_lib/plots.py)
device = config.get_device()
print("profile:", config.profile())

# %% [markdown]
# ## Profiles
#
# The environment variable `TME_PROFILE` chooses between two sizes of the same notebook:
#
# - `smoke` (the default) replaces IMDB by a small generated corpus in which the sentiment of a
#   review is carried by a few *planted* words among filler words. It needs no download, runs in
#   seconds, and its right answer is known — useful to check code and, later, to check that an
#   attention model looks where it should.
# - `full` uses the real reviews. The book shows the outputs of this profile.
#
# ## From text to tokens
#
# The tokeniser lowercases the text, drops the `<br />` line breaks that IMDB reviews are full of,
# and keeps punctuation as tokens of its own: `!` and `?` carry sentiment too.

# %% tags=["nbval-check-output"]
print(tokenize("A <br /><br />GREAT film... isn't it? 10/10!"))

# %% [markdown]
# Each token is then replaced by its index in a vocabulary built from IMDB's training reviews,
# never from the test reviews (words seen at least 5 times). The validation reviews, drawn from
# the training ones later, count towards the vocabulary: which words exist uses no label. Two indices are reserved: `PAD = 0` fills the end of short
# reviews in a batch, and `OOV = 1` stands for every word outside the vocabulary.

# %% tags=["nbval-check-output"]
print(f"PAD = {PAD}, OOV = {OOV}")

# %% tags=["nbval-ignore-output"]
spec = chapter.spec()  # the one run of this chapter: its data, vectors, model and training
MAX_LEN = spec.data["max_len"]
data = chapter.load_data(spec)[0]
vocab = data.vocab
for name in ("train", "val", "test"):
    split = getattr(data, name)
    print(f"{name:5s}: {len(split):6d} reviews, {split.labels.mean():.1%} positive, "
          f"median length {int(np.median(split.lengths))} tokens")
print(f"vocabulary: {len(vocab.itos)} entries")

# %% [markdown]
# The validation split is carved out of the training reviews with a fixed seed; every choice
# (epochs, learning rate, architecture) is made on it, and the test split is used once per run,
# at the end.
#
# ## What the reviews look like
#
# Review lengths spread over two orders of magnitude. Truncating to the first 400 tokens keeps
# all of most reviews while bounding the cost of the longest ones. The out-of-vocabulary rate
# tells how much text the model cannot see.

# %% mystnb={"figure": {"caption": "Number of tokens per training review. The dashed line is the length cut: longer reviews keep their first tokens only."}} tags=["nbval-ignore-output"]
full_lengths = np.diff(data.train.offsets)
fig, ax = plt.subplots(figsize=(6.6, 3.2))
# bins of equal width on the logarithmic axis the lengths are drawn on
bins = np.geomspace(max(full_lengths.min(), 1), full_lengths.max() + 1, 60)
ax.hist(full_lengths, bins=bins, color="tab:blue")
if MAX_LEN:
    ax.axvline(MAX_LEN, color="tab:red", ls="--", label=f"truncation at {MAX_LEN} tokens")
    ax.legend()
ax.set(xlabel="tokens per review", ylabel="reviews", title="Lengths of the training reviews")
ax.set_xscale("log")
plt.show()
share_cut = (full_lengths > MAX_LEN).mean() if MAX_LEN else 0.0
test_ids = data.test.ids
print(f"reviews longer than the truncation: {share_cut:.1%}")
print(f"out-of-vocabulary tokens in the test reviews: {(test_ids == OOV).mean():.2%}")

# %% [markdown]
# ## Padded batches and their mask
#
# A batch is a rectangle: reviews of different lengths are padded with `PAD` up to the longest
# one, and a boolean **mask** marks the real tokens. Every later model uses the mask, so that
# padding changes nothing: not a mean, not an attention weight.
#
# **Exercise.** Write `pad_batch(sequences)` that takes a list of 1-D tensors of token ids and
# returns `(x, mask)`: `x` of shape `(batch, longest)` with the ids at the start of each row and
# `PAD` after them, `mask` a boolean tensor, True on real tokens.

# %% tags=["solution", "hide-input"]
def pad_batch(sequences):
    # BEGIN SOLUTION
    # HINT: compare torch.arange(longest) with each length to build the mask, then fill x[mask].
    lengths = torch.tensor([len(s) for s in sequences])
    mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]
    x = torch.full(mask.shape, PAD, dtype=torch.long)
    x[mask] = torch.cat([torch.as_tensor(s, dtype=torch.long) for s in sequences])
    return x, mask
    # END SOLUTION


# %% tags=["nbval-check-output"]
from tme_lib.checkers.data import check_pad_batch

check_pad_batch(pad_batch)
x, mask = pad_batch([torch.tensor([5, 6, 7]), torch.tensor([8])])
print(x)
print(mask)

# %% [markdown]
# ## Bucketing: less padding, faster epochs
#
# With random batches, a 30-token review shares its batch with a 1,000-token one and most of the
# rectangle is padding that the model computes for nothing. `BucketLoader` shuffles the reviews,
# sorts them by length within large chunks, cuts the chunks into batches and shuffles the batches:
# every epoch sees different batches, yet each batch holds reviews of similar lengths.

# %% tags=["nbval-ignore-output"]
for bucket in (False, True):
    loader = BucketLoader(data.train, batch_size=64, bucket=bucket)
    waste = loader.padding_fraction()
    print(f"bucketing {'on ' if bucket else 'off'}: {waste:.1%} of the slots are padding")

# %% [markdown]
# ## Frozen word vectors
#
# Every IMDB model of the course reads 50-dimensional word vectors that are **not** trained with
# the classifier: attention then has to work with word meanings it cannot change. The original
# course used GloVe {cite}`pennington2014`; offline, the library trains word2vec {cite}`mikolov2013` on the training and
# unlabelled IMDB reviews (never the test reviews), once, deterministically, and caches it
# (`load_vectors(vocab, source="glove")` switches to GloVe). Neighbours by cosine similarity show
# what the vectors know: words used in the same contexts end up close, sentiment included.

# %% tags=["nbval-ignore-output"]
vectors = chapter.load_data(spec)[1]  # load_vectors(vocab, **spec.inputs)
print("vectors:", tuple(vectors.shape))
print(textwrap.fill(f"settings: {spec.inputs}", 92, subsequent_indent="    "))
probe = ("excellent", "awful", "boring", "loved") if config.is_full() else ("great", "awful")
for word in probe:
    neighbours = nearest_neighbours(vectors, vocab, word, k=6)
    print(f"{word:>10s}: " + ", ".join(w for w, _ in neighbours))

# %% [markdown]
# ## The training loop, and the first baseline
#
# The baseline represents a review by the **mean of its word vectors over real tokens**,
#
# $$\hat t = \frac{1}{n}\sum_{i=1}^{n} x_i ,$$
#
# and classifies it with a logistic regression $p(\text{positive}\mid t) = \sigma(w^\top \hat t + b)$:
# 51 parameters. It ignores word order and gives every word the same weight; the next chapter
# lets the model choose which words to average.
#
# A run is described by one **experiment spec**: the data (dataset, validation draw,
# vocabulary, cut), the inputs (the word vectors and every setting they were trained with), the
# model (its name and every constructor argument) and the training (optimizer, learning rate,
# schedule, epochs, batch sizes, evaluation order), plus the seed. Its **key** is a hash of all
# of it, so changing any one setting names a new run.

# %% tags=["nbval-ignore-output"]
for section in ("data", "inputs", "model"):
    print(textwrap.fill(f"{section}: {getattr(spec, section)}", 92, subsequent_indent="    "))
print(textwrap.fill(f"training: {spec.training}", 92, subsequent_indent="    "))
print("key:", spec.key())

# %% [markdown]
# Training goes through `load_or_train`. If a run record with that key exists (the book's
# records are committed in `results/runs/`) it checks it and loads it; otherwise it trains —
# with a progress bar, the validation accuracy after each epoch, the best epoch kept, one
# evaluation on the test split, and a checkpoint after each epoch so that an interrupted run
# resumes where it stopped (the checkpoint names the commit of its code, and only that code
# resumes it). `python -m tme_lib.runs data` does the same from a terminal.

# %% tags=["nbval-ignore-output"]
from tme_lib.training.records import device_text

run = chapter.run(spec)
print(f"test accuracy {run.final['test_acc']:.1%} (best epoch {run.final['best_epoch']}, "
      f"{run.seconds:.0f} s on {device_text(run.device)})")

# %% mystnb={"figure": {"caption": "Loss and accuracy per epoch of the mean-of-embeddings baseline, on the training and validation splits."}} tags=["nbval-ignore-output"]
plot_learning_curves([run], labels=["mean of embeddings"])
plt.show()

# %% [markdown]
# The record holds everything needed to trust and regenerate the number above: the whole spec
# and its key, the commit of the code that trained it, the SHA-256 of the weights file (checked
# on every load), the device, the wall time and the history of every epoch. Its seal, a SHA-256
# over all of that, is checked on every load too: a number edited after the run is refused.

# %% tags=["nbval-check-output"]
print("\n".join(sorted(k for k in run.to_json() if k not in ("history", "final"))))

# %% tags=["remove-cell", "nbval-ignore-output"]
# Every figure of this notebook, checked against the book's column (tme_lib.plots.STYLE).
plots.check_figures()
