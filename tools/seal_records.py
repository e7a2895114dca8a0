"""Seal the run records written before records were sealed (format 2 -> 3).

    python tools/seal_records.py [FOLDER]     # default: results/runs

Each record is checked first as the loader checks it (its spec matches its key, its weights
match their SHA-256); only then is its format set to 3 and its seal added. Nothing else in the
record changes. A record that fails a check is listed and left as it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tme_lib import config
from tme_lib.data.download import sha256sum
from tme_lib.training.records import FORMAT, seal_of
from tme_lib.training.spec import Spec


def seal(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("seal"):
        return "sealed already"
    if Spec.from_dict(data["spec"]).key() != data["key"] or not path.stem.endswith(
        data["key"]
    ):
        return "REFUSED: spec does not match its key"
    weights = path.with_suffix(".pt")
    if data["weights_sha256"] is not None and (
        not weights.exists() or sha256sum(weights) != data["weights_sha256"]
    ):
        return "REFUSED: weights missing or not those of the record"
    data["format"] = FORMAT
    data["seal"] = seal_of(data)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return "sealed"


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else config.REPO_ROOT / "results" / "runs"
    outcomes = {p: seal(p) for p in sorted(folder.rglob("*.json"))}
    refused = [f"{p}: {o}" for p, o in outcomes.items() if o.startswith("REFUSED")]
    done = sum(o == "sealed" for o in outcomes.values())
    print(f"{done} of {len(outcomes)} records sealed now")
    print("\n".join(refused))
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
