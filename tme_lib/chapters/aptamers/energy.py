"""Labels: the ensemble folding free energy of a DNA strand, computed with ViennaRNA.

Taught in ``notebooks/03_aptamers`` (section "What the model predicts"). For a strand x the
ensemble free energy is

    ΔG_ens(x) = −RT · ln Z(x),   Z(x) = Σ_s exp(−ΔG(s) / RT),

the sum running over every secondary structure s the strand can fold into (37 °C, 1 M Na⁺, in
kcal/mol). The source project computed it with NUPACK, which cannot be installed here;
ViennaRNA's partition function with its DNA parameter set (Mathews et al. 2004) stands in for it.
ViennaRNA loads RNA parameters by default and keeps the loaded set in process-global state, so
every process that labels strands — each worker of the pool included — loads the set itself.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import RNA
from tqdm.auto import tqdm

from tme_lib.chapters.aptamers.sequences import encode

PARAMETER_SETS = {
    "dna_mathews2004": RNA.params_load_DNA_Mathews2004,
    "rna_turner2004": RNA.params_load_RNA_Turner2004,
}
DEFAULT_PARAMS = "dna_mathews2004"


def load_parameters(params: str = DEFAULT_PARAMS) -> None:
    """Load an energy parameter set into this process's ViennaRNA."""
    if params not in PARAMETER_SETS:
        raise ValueError(
            f"unknown parameter set {params!r}; choose one of {sorted(PARAMETER_SETS)}."
        )
    PARAMETER_SETS[params]()


def ensemble_free_energy(sequence: str) -> float:
    """ΔG_ens = −RT ln Z of one strand (kcal/mol) with the parameters loaded in this process."""
    return float(RNA.fold_compound(sequence).pf()[1])


def _label_chunk(args: tuple[list[str], str]) -> list[float]:
    sequences, params = args
    load_parameters(params)  # each worker has its own ViennaRNA state
    return [ensemble_free_energy(s) for s in sequences]


def label(
    sequences: list[str],
    params: str = DEFAULT_PARAMS,
    processes: int | None = None,
    chunk: int = 2_000,
    progress: bool = True,
) -> np.ndarray:
    """ΔG_ens of every strand as ``float32[N]``, over ``processes`` workers (default: all cores).

    Strands are validated first (non-empty, A, C, G, T only, all of the same length), so that a
    bad strand is named by its row instead of failing inside ViennaRNA. The workers are a
    :class:`concurrent.futures.ProcessPoolExecutor`: a worker that cannot start (e.g. this is
    called at the top level of a script without ``if __name__ == "__main__":``) stops the call
    with a message instead of being started again and again."""
    sequences = list(sequences)
    if sequences:
        if isinstance(sequences[0], str) and not sequences[0]:
            raise ValueError("row 0: an empty strand has no folding energy; remove it.")
        encode(sequences, len(sequences[0]))  # validation, naming the offending row
    processes = processes or os.cpu_count() or 1
    jobs = [(sequences[i : i + chunk], params) for i in range(0, len(sequences), chunk)]
    bar = tqdm(
        total=len(sequences), desc=f"ΔG ({params})", unit="seq", disable=not progress
    )
    out: list[float] = []
    if processes == 1:
        for job in jobs:
            out += _label_chunk(job)
            bar.update(len(job[0]))
    else:
        # "spawn", not "fork": a forked child would inherit torch's thread pools mid-use.
        context = mp.get_context("spawn")
        try:
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                for part in pool.map(_label_chunk, jobs):
                    out += part
                    bar.update(len(part))
        except BrokenProcessPool:
            bar.close()
            raise RuntimeError(
                "the worker processes that label strands stopped while starting. If label() is "
                'called from a script, put the call under  if __name__ == "__main__":  (each '
                "worker imports the script again), or pass processes=1."
            ) from None
    bar.close()
    return np.asarray(out, dtype=np.float32)


def mfe_structure(sequence: str, params: str = DEFAULT_PARAMS) -> tuple[str, float]:
    """The single most stable structure of a strand, in dot-bracket notation, and its ΔG.

    ``(((...)))`` marks a stem of three pairs closing a loop of three unpaired letters."""
    load_parameters(params)
    structure, mfe = RNA.fold(sequence)
    return structure, float(mfe)


def partners(structure: str) -> np.ndarray:
    """Dot-bracket → ``int[L]``: the index each letter pairs with, −1 when unpaired."""
    out, stack = np.full(len(structure), -1), []
    for i, c in enumerate(structure):
        if c == "(":
            stack.append(i)
        elif c == ")":
            j = stack.pop()
            out[i], out[j] = j, i
    return out
