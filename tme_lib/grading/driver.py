"""Run one submission's grading plan; started by :mod:`.sandbox` as a separate process.

    python -I -c "<put LIBRARY first on sys.path, then call main>" PLAN.json VERDICT_FD LIBRARY

The library comes first on ``sys.path`` from the read-only copy the sandbox made (``-I``:
neither the submission's folder nor the environment can put another ``tme_lib`` first). Before
any cell runs, the driver imports every checker of the plan and keeps the functions, and takes
a snapshot of the modules a checker relies on (the course's library, PyTorch, NumPy, the
built-ins). Then, in one namespace, in the course's order:

- a course cell runs (an error in it is noted, not fatal);
- an exercise runs the student's cell (``None``: "not submitted");
- a check calls the kept checker on the arguments the course's checker cell names, unless the
  submission changed one of the watched modules (then the exercise fails, "tampered"), or an
  exercise it needs was not submitted or raised. The student's function may run only inside the
  checker; the snapshot is compared again after the call.

Each verdict is one JSON line on the file descriptor ``VERDICT_FD`` (a pipe the sandbox reads);
what the cells print goes to ``stdout`` and counts for nothing.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import json
import os
import sys
import traceback

WATCHED = (
    "builtins",
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.Tensor",
    "numpy",
    "math",
    "tme_lib.checkers",
)
LIBRARY_WATCHED = (
    "tme_lib.checkers",
    "tme_lib.blocks",
    "tme_lib.training.metrics",
    "tme_lib.grading",
)
UNWATCHED = {"_"}  # set by Python itself (the last value shown)


def _watched_objects(checker_modules) -> dict[str, object]:
    import torch
    import torch._dynamo  # noqa: F401 - on import it wraps torch.manual_seed: before the snapshot

    objects = {}
    for name in WATCHED:
        if name == "torch.Tensor":
            objects[name] = torch.Tensor
        else:
            objects[name] = importlib.import_module(name)
    for module in checker_modules:
        objects[module.__name__] = module
    for name, module in list(sys.modules.items()):  # what the checkers compute with
        if name.startswith(LIBRARY_WATCHED) and module is not None:
            objects.setdefault(name, module)
    return objects


def snapshot(objects: dict[str, object]) -> dict[str, dict[str, int]]:
    """``{object name: {attribute: id(value)}}`` of every watched module or class."""
    return {
        name: {k: id(v) for k, v in vars(obj).items() if k not in UNWATCHED}
        for name, obj in objects.items()
    }


def changed(objects: dict[str, object], before: dict[str, dict[str, int]]) -> list[str]:
    """The attributes of the watched objects replaced or removed since ``before``."""
    out = []
    for name, ids in before.items():
        current = vars(objects[name])
        for attribute, identity in ids.items():
            if attribute not in current or id(current[attribute]) != identity:
                out.append(f"{name}.{attribute}")
    return out


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Verdicts:
    def __init__(self, fd: int):
        self.stream = os.fdopen(fd, "w", buffering=1)

    def send(self, exercise: str, status: str, message: str) -> None:
        line = {"exercise": exercise, "status": status, "message": message[:2000]}
        self.stream.write(json.dumps(line) + "\n")
        self.stream.flush()


def run(plan: list[dict], verdicts: Verdicts) -> None:
    from tme_lib.checkers import ExerciseError

    checkers, modules = {}, []
    for step in plan:
        if step["kind"] == "check":
            module = importlib.import_module(step["checker"][0])
            checkers[step["checker"][1]] = getattr(module, step["checker"][1])
            modules.append(module)
    objects = {**_watched_objects(modules), "Verdicts": Verdicts}
    before = snapshot(objects)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    state: dict[str, tuple[str, str]] = {}  # exercise name -> (problem, message)
    for step in plan:
        kind = step["kind"]
        if kind == "code":
            try:
                exec(compile(step["source"], "<course cell>", "exec"), namespace)
            except BaseException as error:  # noqa: BLE001 - any failure of a cell is noted
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                print(f"course cell failed: {_error_text(error)}")
        elif kind == "exercise":
            if step["source"] is None:
                for name in step["names"]:
                    state[name] = ("not submitted", "no cell of the notebook defines it")
                continue
            try:
                exec(compile(step["source"], "<your exercise cell>", "exec"), namespace)
            except NotImplementedError as error:
                for name in step["names"]:
                    state[name] = ("not yet", f"not implemented yet: {error}")
            except BaseException as error:  # noqa: BLE001
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                for name in step["names"]:
                    state[name] = ("failed", f"your cell raised {_error_text(error)}")
        else:
            verdicts.send(
                step["exercise"],
                *check(step, namespace, checkers, state, objects, before, ExerciseError),
            )


def check(step, namespace, checkers, state, objects, before, ExerciseError):
    """``(status, message)`` of one checker call."""
    for name in step["needs"]:
        if name in state and state[name][0] != "not yet":
            return state[name]
    tampered = changed(objects, before)
    if tampered:
        return "failed", _tampered(tampered)
    output = io.StringIO()
    try:
        args = [
            eval(a, namespace) for a in step["args"]
        ]  # the course's own argument code
        with contextlib.redirect_stdout(output):
            checkers[step["checker"][1]](*args)
    except ExerciseError as error:
        message = str(error)
        status = "not yet" if "not implemented yet" in message else "failed"
        return status, message
    except NameError as error:
        return "failed", f"{error}: define it in the exercise cell"
    except BaseException as error:  # noqa: BLE001 - the checker must not stop the grading
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        where = traceback.extract_tb(error.__traceback__)[-1]
        return "failed", f"the check stopped on {_error_text(error)} ({where.name})"
    tampered = changed(objects, before)
    if tampered:
        return "failed", _tampered(tampered)
    return "passed", "all checks passed"


def _tampered(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
    return (
        f"the submission replaced parts of the course's library or of PyTorch/NumPy ({shown}): "
        "graded as failed"
    )


def main(argv: list[str]) -> int:
    plan_path, fd, library = argv[0], int(argv[1]), argv[2]
    verdicts = Verdicts(fd)
    import tme_lib

    if not tme_lib.__file__.startswith(library):  # the sandbox's read-only copy, no other
        verdicts.send("*", "error", f"tme_lib imported from {tme_lib.__file__}")
        return 1
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    os.environ.setdefault("MPLBACKEND", "Agg")
    run(plan, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
