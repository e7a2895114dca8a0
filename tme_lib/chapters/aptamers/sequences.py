"""DNA strands as token ids: alphabet, validation, random libraries and a CSV loader.

Taught in ``notebooks/03_aptamers`` (section "From letters to tokens"). A strand of length L
becomes a row of L ids, ``A→0, C→1, G→2, T→3``; every strand of a data set has the same length,
so batches need no padding and the mask is all ``True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

ALPHABET = "ACGT"
LENGTH = 30  # the random region of many SELEX libraries is 30 nt long
_LOOKUP = np.full(256, 255, dtype=np.uint8)
for _i, _letter in enumerate(ALPHABET):
    _LOOKUP[ord(_letter)] = _i
    _LOOKUP[ord(_letter.lower())] = _i
# random libraries are drawn in seeded blocks so that a smaller n is a prefix
_BLOCK = 10_000


def validate(
    sequences: Sequence[str], length: int = LENGTH, what: str = "row", first: int = 0
) -> None:
    """Raise ``ValueError`` naming the first entry that is not a DNA strand of ``length`` letters
    from A, C, G, T (either case). Entries are called ``f"{what} {first + index}"`` in messages."""
    for row, seq in enumerate(sequences, start=first):
        if not isinstance(seq, str):
            raise ValueError(f"{what} {row}: expected a DNA string, got {seq!r}.")
        if len(seq) != length:
            raise ValueError(
                f"{what} {row}: {seq!r} has {len(seq)} letters, expected {length}; "
                "every strand of a data set must have the same length."
            )
        bad = [c for c in seq if c.upper() not in ALPHABET]
        if bad:
            pos = next(i for i, c in enumerate(seq) if c.upper() not in ALPHABET)
            raise ValueError(
                f"{what} {row}: {seq!r} has letter {bad[0]!r} at position {pos}; "
                "only A, C, G and T (either case) are allowed."
            )


def encode(sequences: Sequence[str], length: int = LENGTH) -> np.ndarray:
    """Strands → ``uint8[N, length]`` ids (A=0, C=1, G=2, T=3), after :func:`validate`."""
    sequences = list(sequences)
    validate(sequences, length)
    if not sequences:
        return np.zeros((0, length), dtype=np.uint8)
    raw = np.frombuffer("".join(sequences).encode("ascii"), dtype=np.uint8)
    return _LOOKUP[raw].reshape(len(sequences), length)


def decode(ids: np.ndarray | Iterable[Iterable[int]]) -> list[str]:
    """``[N, L]`` ids → strands (inverse of :func:`encode`)."""
    letters = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() > 3):
        raise ValueError("token ids must lie in 0..3 (A, C, G, T).")
    return [row.tobytes().decode("ascii") for row in letters[ids]]


def random_library(n: int, seed: int, length: int = LENGTH) -> np.ndarray:
    """``n`` uniformly random strands as ``uint8[n, length]`` ids, the model of a SELEX library.

    Drawn in blocks of 10,000 rows, block ``b`` from ``default_rng([seed, b])``, so the first
    ``m`` rows are the same for every ``n ≥ m`` (learning curves can take prefixes)."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}.")
    blocks = [
        np.random.default_rng([seed, b]).integers(
            0, 4, size=(_BLOCK, length), dtype=np.uint8
        )
        for b in range((n + _BLOCK - 1) // _BLOCK)
    ]
    return np.concatenate(blocks)[:n] if blocks else np.zeros((0, length), dtype=np.uint8)


def load_csv(path: str | Path, length: int = LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """A user's own data: a CSV with the header ``sequence,target`` and one strand per line →
    ``(ids uint8[N, L], float32[N])``.

    Every malformed input raises ``ValueError`` naming the file, the line (the header is line
    1), the column and the value: an empty file, another header, a line with more or fewer
    fields, spaces around a value, a strand that is not DNA of ``length`` letters, a missing
    target, or one that is not a finite number. A UTF-8 byte-order mark (Excel's) is
    accepted."""
    import csv

    path = Path(path)
    try:
        # utf-8-sig: a byte-order mark, which Excel writes at the start of a UTF-8 CSV, is
        # dropped instead of becoming part of the header
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start})."
        ) from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ValueError(
            f"{path} is empty: expected a header 'sequence,target' and one "
            "strand per line."
        )
    if [c.strip() for c in rows[0]] != ["sequence", "target"]:
        raise ValueError(
            f"{path}, line 1: header {','.join(rows[0])!r}; expected 'sequence,target'."
        )
    sequences, targets = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue  # a blank line
        if len(row) != 2:
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields {row!r}; expected 2 "
                "(sequence,target)."
            )
        for column, value in zip(("sequence", "target"), row):
            if value != value.strip():
                raise ValueError(
                    f"{path}, line {line}, column {column!r}: {value!r} has "
                    "spaces around it; remove them."
                )
        sequence, target = row
        if not target:
            raise ValueError(
                f"{path}, line {line}, column 'target': the value is missing."
            )
        try:
            number = float(target)
        except ValueError:
            number = float("nan")
        if not np.isfinite(number):
            raise ValueError(
                f"{path}, line {line}, column 'target': {target!r} is not a "
                "finite number."
            )
        sequences.append(sequence)
        targets.append(number)
    if not sequences:
        raise ValueError(f"{path} has a header but no strand.")
    validate(sequences, length, what=f"{path}, column 'sequence', line", first=2)
    return encode(sequences, length), np.asarray(targets, dtype=np.float32)
