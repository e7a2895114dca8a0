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


def call_student(fn, *args, **kwargs):
    """Call the student's function; a stub that still raises ``NotImplementedError`` is
    reported as such."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise ExerciseError(
            f"{getattr(fn, '__name__', 'your function')} is not implemented yet: {err}"
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


def passed(name: str) -> None:
    print(f"✓ {name}: all checks passed.")
