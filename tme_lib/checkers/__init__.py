"""Exercise checkers: a student calls ``check_<exercise>(their_function)`` in a notebook.

Every checker compares the student's function with the library's reference on a few inputs
chosen to expose the usual mistakes, and either prints a short success line or raises
:class:`ExerciseError` with a message that says what differs and what to look at.
Shared helpers live here; the checkers of each chapter live in ``checkers/<chapter>.py``.
"""

from __future__ import annotations

import torch


class ExerciseError(AssertionError):
    """A checker found a difference between the student's answer and the expected one."""


def describe(value) -> str:
    """A short description of an argument for messages: a tensor's shape and dtype, a
    module's class, a number."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor {list(value.shape)}"
    if isinstance(value, torch.nn.Module):
        return f"a {type(value).__name__}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return repr(value)


def call_student(fn, *args, hint: str = "", **kwargs):
    """Call the student's function. A stub that still raises ``NotImplementedError`` is
    reported as such; any other exception raised inside it becomes an :class:`ExerciseError`
    that names the exercise, the exception and the inputs it was called with (and ``hint``)."""
    name = getattr(fn, "__name__", "your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise ExerciseError(f"{name} is not implemented yet: {err}") from None
    except ExerciseError:
        raise
    except Exception as err:
        inputs = ", ".join(describe(a) for a in args)
        raise ExerciseError(
            f"{name} raised {type(err).__name__} ({err}) when called with {inputs}."
            + (f" {hint}" if hint else "")
        ) from None


def expect_close(
    name: str, got, expected: torch.Tensor, hint: str, atol: float = 1e-5
) -> None:
    """Raise :class:`ExerciseError` unless ``got`` is a tensor of ``expected``'s shape and
    values."""
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"{name}: expected a torch.Tensor, got {type(got).__name__}.")
    if got.shape != expected.shape:
        raise ExerciseError(
            f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}. {hint}"
        )
    if not torch.allclose(
        got.double(), expected.double(), atol=atol, rtol=1e-4, equal_nan=False
    ):
        gap = (got.double() - expected.double()).abs().max().item()
        raise ExerciseError(
            f"{name}: values differ from the expected ones (largest gap {gap:.3g}). {hint}"
        )


def check_dropout(name: str, run_student, run_reference, layer) -> None:
    """In training mode, with dropout on, the student's layer must draw the same dropout masks
    as the library's (``layer.dropout`` on the attention's output, then on the MLP's): both
    are run from the same seed. ``run_*`` take no argument and return the output."""
    before, p = layer.training, layer.dropout.p
    layer.dropout.p = 0.3
    try:
        layer.eval()
        with torch.no_grad():
            no_dropout = run_reference()
            layer.train()
            torch.manual_seed(11)
            got = run_student()
            torch.manual_seed(11)
            expected = run_reference()
    finally:
        layer.train(before)
        layer.dropout.p = p
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        if torch.allclose(got, no_dropout, atol=1e-5):
            raise ExerciseError(
                f"{name}: in training mode your layer ignores dropout. Apply layer.dropout to "
                "the attention's output and to the MLP's, before each is added to its residual."
            )
    expect_close(
        f"{name} (training mode, dropout 0.3)",
        got,
        expected,
        "Apply layer.dropout twice, in this order: to the attention's output, then to the "
        "MLP's; not to the input or to the sum.",
    )


def passed(name: str) -> None:
    print(f"✓ {name}: all checks passed.")
