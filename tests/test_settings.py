"""No setting outside the spec: every module-level constant that the code of a run reads is
accounted for — in the spec, in a version derived from the values, or shown not to change a
result. A constant read by a function of the modules a run imports, and listed nowhere here,
fails the test: add it to the spec (or to a fingerprint), or say here why it cannot change a
recorded number."""

import ast
import hashlib
import json

import pytest

from tme_lib import config
from tme_lib.data import batching, text, toy
from tme_lib.training.spec import ADDED, Training

PACKAGES = ("tme_lib/data", "tme_lib/blocks", "tme_lib/training", "tme_lib/chapters")
MODULES = ("tme_lib/config.py",)

# Each entry: how the constant reaches (or cannot reach) a result.
SPEC = "written into the spec by the chapter's settings, so the key covers it"
DEFAULT = "a default argument only; a run passes the value of its spec"
FINGERPRINT = (
    "fingerprinted: a changed value without a new version is refused (toy.version, "
    "text.tokenizer_version)"
)
CODE = (
    "a constant of an algorithm, changed only by a commit; every record names its commit"
)
GUARD = "stops or refuses a run, never changes a recorded number"
NOT_A_RESULT = "names, paths, messages, allowed values, table columns or caches"
DEVICE = "thread count: recorded in the device field of every record"

ACCOUNTED = {
    **dict.fromkeys(
        [
            "chapters.data_and_training.SETTINGS",
            "chapters.tme9.SETTINGS",
            "chapters.tme9.MODEL_SETTINGS",
            "chapters.tme9.OPTIMIZER_SETTINGS",
            "chapters.tme9.BAG_OF_WORDS",
            "chapters.tme9.COLLAPSE_LAMBDA",
            "chapters.tme9.ENTROPY_LAMBDAS",
            "chapters.tme9.ENTROPY_SEEDED",
            "chapters.tme9.EXPLORATORY",
            "chapters.tme9.LSTM_SEEDS",
            "chapters.tme9.SEEDED_ARMS",
            "chapters.tme9.ATTENTION_MODELS",
            "chapters.tme10.SETTINGS",
            "chapters.tme10.OPTIMIZER",
            "chapters.tme10.VARIANTS",
            "chapters.tme10.SEEDS",
            "chapters.tme10.MORE_SEEDS",
            "chapters.tme10.OTHER_SLOPES",
            "chapters.beyond.ATTENTION",
            "chapters.beyond.FULL_LENGTH",
            "chapters.beyond.LAMBDAS",
            "chapters.beyond.NB_BASELINE",
            "chapters.aptamers.runs.ABLATION",
            "chapters.aptamers.runs.BASELINE_SIZES",
            "chapters.aptamers.runs.CURVE_SIZES",
            "chapters.aptamers.runs.FITTED",
            "chapters.aptamers.runs.OURS",
            "chapters.aptamers.runs.PLANTED",
            "chapters.aptamers.runs.SEEDS",
            "chapters.aptamers.runs.CHEAP_SEEDS",
            "chapters.aptamers.runs.SOURCE",
            "chapters.aptamers.runs.TRAINING",
            "chapters.pretraining.SIZES",
            "chapters.pretraining.TEXT",
            "chapters.pretraining.PRETRAINING",
            "chapters.pretraining.FINETUNING",
            "chapters.pretraining.ARMS",
            "chapters.pretraining.CHOICES",
            "chapters.pretraining.CURVE_SEEDS",
            "chapters.pretraining.ROUTES",
            "chapters.pretraining.ROUTE_SEEDS",
            "chapters.pretraining.EPOCH_STEPS",
            "chapters.pretraining.MEAN_LENGTH",
            "chapters.aptamers.runs.BASELINE_SETTINGS",
            "data.vectors.DIM",
            "data.vectors.WORD2VEC_DEFAULTS",
            "data.pretraining.SPECIALS",
        ],
        SPEC,
    ),
    **dict.fromkeys(
        [
            "data.batching.CHUNK_BATCHES",
            "blocks.masked_lm.MASK_RATE",
            "blocks.masked_lm.MASK_SHARES",
            "chapters.aptamers.energy.DEFAULT_PARAMS",
        ],
        DEFAULT,
    ),
    **dict.fromkeys(
        [
            "data.toy.FILLER",
            "data.toy.POSITIVE",
            "data.toy.NEGATIVE",
            "data.toy.OOV_RATE",
            "data.toy.SIZES",
            "data.toy.VERSION",
            "data.toy.VERSIONS",
            "data.text.LINE_BREAK",
            "data.text.ZERO_WIDTH",
            "data.text._DROP_ZERO_WIDTH",
            "data.text._TOKEN",
            "data.text.TOKENIZERS",
            "data.text.TOKENIZER_VERSION",
        ],
        FINGERPRINT,
    ),
    **dict.fromkeys(
        [
            "blocks.ngrams._PRIME",
            "blocks.masked_lm.IGNORE",
            "training.metrics._EPS",
            "chapters.aptamers.sequences.ALPHABET",
            "chapters.aptamers.sequences.LENGTH",
            "chapters.aptamers.sequences._BLOCK",
            "chapters.aptamers.sequences._LOOKUP",
            "chapters.aptamers.simulator._COMPLEMENT",
            "chapters.aptamers.energy.PARAMETER_SETS",
            "chapters.aptamers.baselines.BASELINES",
            "chapters.beyond._NB",
            "chapters.aptamers.analysis.PLANTED_FEATURES",  # an analysis, after the run
        ],
        CODE,
    ),
    **dict.fromkeys(
        [
            "blocks.attention.MAX_LENGTH",
            "blocks.attention.MAX_SCORE_BYTES",
            "training.trainer.DIVERGENCE_FACTOR",
            "training.records.FORMAT",
            "training.pretrainer.CHECKPOINT_EVERY",
            "chapters.beyond.REVIEW_SETTINGS",
            "config.MAX_THREADS",
            "config.DISK_FULL",
        ],
        GUARD,
    ),
    **dict.fromkeys(
        [
            "config.PROFILES",
            "config.DEVICES",
            "chapters.__init__.CHAPTERS",
            "chapters.data_and_training.CHAPTER",
            "chapters.data_and_training.MODELS",
            "chapters.tme9.CHAPTER",
            "chapters.tme9.MODELS",
            "chapters.tme9.COMPARISONS",
            "chapters.tme9.BASELINE_COLUMNS",
            "chapters.tme10.CHAPTER",
            "chapters.tme10.MODELS",
            "chapters.tme10.COMPARISONS",
            "chapters.pretraining.COMPARISONS",
            "chapters.pretraining.PAIRED",
            "chapters.pretraining.DETERMINISTIC",
            "chapters.pretraining.PRETRAINING_TASKS",
            "chapters.pretraining.ROUTE_NAMES",
            "chapters.beyond.COMPARISONS",
            "chapters.beyond.EXPLORATORY",
            "chapters.aptamers.runs.EXPLORATORY",
            "training.metrics.COMPARISON_COLUMNS",
            "chapters.tme10.POOLINGS",
            "chapters.beyond.CHAPTER",
            "chapters.beyond.TABLE_COLUMNS",
            "chapters.aptamers.runs.CHAPTER",
            "chapters.aptamers.runs.MODELS",
            "chapters.aptamers.runs.TABLE_COLUMNS",
            "chapters.pretraining.CHAPTER",
            "chapters.pretraining.MODELS",
            "blocks.encoder.POSITIONS",
            "blocks.layers.NORMS",
            "data.batching.VAL_ORDERS",
            "data.corpus.DATASETS",
            "data.download.CHUNK",
            "data.download.MARKER",
            "data.download.OWNER",
            "data.download.REVIEW_FILE",
            "data.imdb.ARCHIVE",
            "data.imdb.COUNTS",
            "data.imdb.LAYOUT",
            "data.imdb.SHA256",
            "data.imdb.URL",
            "data.vectors.GLOVE_URL",
            "data.vectors.GLOVE_WORDS",
            "training.bag_of_words.WEIGHTINGS",
            "training.records.RESULT_COLUMNS",
            "training.records._LOADED",
            "training.spec.ADDED",
            "training.spec.OPTIMIZERS",
            "training.spec.SCHEDULES",
            "training.spec.TASKS",
            "training.spec.VAL_ORDERS",
            "training.text_runs._VECTORS",
            "training.published.LOCK",  # where the records are found, checked by their keys
            "training.published.RELEASE",
            "config.REPO_ROOT",
        ],
        NOT_A_RESULT,
    ),
    **dict.fromkeys(
        ["training.records.WEIGHTS_NOT_KEPT", "chapters.aptamers.runs.BASELINE_COLUMNS"],
        NOT_A_RESULT,
    ),
    **dict.fromkeys(["config.SMOKE_THREADS", "config._DEFAULT_THREADS"], DEVICE),
}


def _files():
    root = config.REPO_ROOT
    for package in PACKAGES:
        yield from sorted((root / package).rglob("*.py"))
    for module in MODULES:
        yield root / module


def constants_read_by_functions() -> dict[str, set[str]]:
    """``{"data.toy.OOV_RATE": {"_split", ...}}``: the upper-case module-level names that a
    function (its body or its default arguments) of the scanned modules reads."""
    found: dict[str, set[str]] = {}
    for path in _files():
        module = ".".join(
            path.relative_to(config.REPO_ROOT / "tme_lib").with_suffix("").parts
        )
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (
                node.targets if isinstance(node, ast.Assign) else [node.target]
            )
            if isinstance(target, ast.Name) and target.id.lstrip("_").isupper()
        }
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if (
                        isinstance(node, ast.Name)
                        and isinstance(node.ctx, ast.Load)
                        and node.id in constants
                    ):
                        found.setdefault(f"{module}.{node.id}", set()).add(function.name)
    return found


def test_every_constant_a_run_reads_is_accounted_for():
    found = constants_read_by_functions()
    unlisted = {name: sorted(f) for name, f in found.items() if name not in ACCOUNTED}
    assert not unlisted, (
        "module constants read at run time and accounted for nowhere (put them in the spec, "
        f"or say in tests/test_settings.py why they cannot change a result): {unlisted}"
    )
    stale = sorted(set(ACCOUNTED) - set(found))
    assert not stale, f"listed but no longer read (remove them): {stale}"


def test_the_scan_sees_a_new_constant(tmp_path, monkeypatch):
    """The scan itself can fail: a module that reads a new constant is found."""
    package = tmp_path / "tme_lib" / "data"
    package.mkdir(parents=True)
    (package / "extra.py").write_text(
        "SHUFFLE_SEED = 3\n\ndef draw():\n    return SHUFFLE_SEED\n"
    )
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "MODULES", ())
    assert constants_read_by_functions() == {"data.extra.SHUFFLE_SEED": {"draw"}}


def test_the_bucket_chunk_is_a_spec_field_whose_old_default_keeps_old_keys():
    assert Training().chunk_batches == batching.CHUNK_BATCHES == ADDED["chunk_batches"]
    from tme_lib.training.spec import Spec

    base = dict(chapter="c", name="n", seed=0, data={}, inputs={}, model={"name": "m"})
    plain = Spec(**base, training=Training())
    assert "chunk_batches" not in plain.to_dict()["training"]
    changed = Spec(**base, training=Training(chunk_batches=2))
    assert changed.key() != plain.key()


@pytest.mark.parametrize(
    "name, value", [("OOV_RATE", 0.05), ("SIZES", {**toy.SIZES, "train": 10})]
)
def test_a_changed_toy_setting_without_a_new_version_is_refused(monkeypatch, name, value):
    assert toy.version() == toy.VERSION
    monkeypatch.setattr(toy, name, value)
    with pytest.raises(RuntimeError, match="VERSION is still 2"):
        toy.load_toy()


def test_a_changed_tokeniser_without_a_new_version_is_refused(monkeypatch):
    assert text.tokenizer_version() == text.TOKENIZER_VERSION
    monkeypatch.setattr(text, "LINE_BREAK", "<br>")
    with pytest.raises(RuntimeError, match="TOKENIZER_VERSION is still"):
        text.tokenizer_version()


def test_the_registered_fingerprint_is_that_of_the_settings():
    settings = [
        text._TOKEN.pattern,
        text._TOKEN.flags,
        text.LINE_BREAK,
        text.ZERO_WIDTH,
        "lower",
    ]
    digest = hashlib.sha256(json.dumps(settings).encode()).hexdigest()
    assert text.TOKENIZERS[text.TOKENIZER_VERSION] == digest


def test_zero_width_characters_no_longer_split_a_word():
    assert text.tokenize("gr\u200beat fi\u200dlm\ufeff") == ["great", "film"]


@pytest.mark.parametrize("value, hint", [(b"great", "decode"), (None, "takes a str")])
def test_tokenize_says_what_it_takes(value, hint):
    with pytest.raises(TypeError, match=hint):
        text.tokenize(value)


def test_the_imdb_archive_has_no_zero_width_character(real_data):
    """Why removing zero-width characters kept tokeniser version 2: IMDB's tokens are the
    same. Reads the real archive (skipped without it)."""
    from tme_lib.data import imdb

    folder = imdb.imdb_root()
    found = [
        p.name
        for part in ("train/pos", "train/neg", "train/unsup", "test/pos", "test/neg")
        for p in (folder / part).glob("*.txt")
        if any(c in p.read_text(encoding="utf-8") for c in text.ZERO_WIDTH)
    ]
    assert not found
