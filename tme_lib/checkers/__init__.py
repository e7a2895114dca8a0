"""Exercise checkers: a student calls ``check_<exercise>(their_function)`` in a notebook.

Every checker compares the student's function with the library's reference on a few inputs
chosen to expose the usual mistakes, and either prints a short success line or raises
:class:`ExerciseError` with a message that says what differs and what to look at.
Shared helpers live here; the checkers of each chapter live in ``checkers/<chapter>.py``.
"""

from __future__ import annotations

import functools

import numpy as np
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


def _snapshot(value):
    """A copy of an argument a function could change in place (tensor, array, sparse matrix,
    module's weights), or ``None``."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if hasattr(value, "tocsr") and hasattr(value, "nnz"):  # a SciPy sparse matrix
        return value.copy()
    if isinstance(value, torch.nn.Module):
        return {k: v.detach().clone() for k, v in value.state_dict().items()}
    return None


def _unchanged(value, before) -> bool:
    if isinstance(value, torch.Tensor):
        return value.shape == before.shape and bool(
            torch.equal(value.detach(), before)
            or torch.allclose(value.detach(), before, equal_nan=True, rtol=0, atol=0)
        )
    if isinstance(value, np.ndarray):
        return value.shape == before.shape and np.array_equal(
            value, before, equal_nan=value.dtype.kind in "fc"
        )
    if isinstance(value, torch.nn.Module):
        now = value.state_dict()
        return now.keys() == before.keys() and all(
            torch.equal(now[k].detach(), before[k]) for k in before
        )
    return value.shape == before.shape and (value != before).nnz == 0


def _restore(value, before) -> None:
    """Put an argument changed in place back, so that the checker's reference is intact."""
    with torch.no_grad():
        if isinstance(value, torch.Tensor) and value.shape == before.shape:
            value.copy_(before)
        elif isinstance(value, np.ndarray) and value.shape == before.shape:
            np.copyto(value, before)
        elif isinstance(value, torch.nn.Module):
            value.load_state_dict(before)


def call_student(fn, *args, hint: str = "", **kwargs):
    """Call the student's function. A stub that still raises ``NotImplementedError`` is
    reported as such; any other exception raised inside it becomes an :class:`ExerciseError`
    that names the exercise, the exception and the inputs it was called with (and ``hint``).
    An argument the function changed in place (a tensor, an array, a module's weights) is an
    error too: the caller's data must stay as it was (the argument is put back first)."""
    name = getattr(fn, "__name__", "your function")
    named = [(f"argument {i + 1}", a) for i, a in enumerate(args)] + list(kwargs.items())
    copies = [(label, value, _snapshot(value)) for label, value in named]
    try:
        result = fn(*args, **kwargs)
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
    for label, value, before in copies:
        if before is not None and not _unchanged(value, before):
            _restore(value, before)
            raise ExerciseError(
                f"{name} changed its {label} ({describe(value)}) in place: the caller's data "
                "must stay as it was. Compute on new tensors (x = x * m, not x *= m; no "
                "masked_fill_, no /= on an argument)."
            )
    return result


def checker(fn):
    """Decorator of every ``check_*``: an error raised by the checker's own computations (on
    an answer of an unexpected type, shape or dtype) becomes an :class:`ExerciseError` that
    says so, never a raw traceback from inside the course's code."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ExerciseError:
            raise
        except Exception as err:
            exercise = fn.__name__.removeprefix("check_")
            raise ExerciseError(
                f"{exercise}: your answer could not be checked ({type(err).__name__}: {err}). "
                "Look at the type, shape and dtype of what your function returns: the "
                "exercise's text gives them."
            ) from None

    return wrapped


def expect_array_form(name: str, got, shape: tuple) -> None:
    """Raise :class:`ExerciseError` unless ``got`` is a NumPy array (not a matrix, not a
    tensor, nothing that only converts to one) of exactly ``shape``."""
    if isinstance(got, np.matrix):
        raise ExerciseError(
            f"{name}: got an np.matrix of shape {got.shape}; return a plain array of shape "
            f"{shape} (np.asarray(m).ravel())."
        )
    if isinstance(got, torch.Tensor):
        raise ExerciseError(f"{name}: got a torch tensor; return a NumPy array.")
    if type(got) is not np.ndarray:
        raise ExerciseError(f"{name}: expected a NumPy array, got {type(got).__name__}.")
    if got.shape != shape:
        raise ExerciseError(f"{name}: expected shape {shape}, got {got.shape}.")


def expect_array(
    name: str, got, expected: np.ndarray, hint: str, atol: float = 1e-6
) -> None:
    """Raise :class:`ExerciseError` unless ``got`` is a NumPy array of ``expected``'s exact
    shape (:func:`expect_array_form`) and values."""
    expect_array_form(name, got, expected.shape)
    if not np.allclose(got, expected, atol=atol, rtol=1e-6):
        raise ExerciseError(f"{name}: values differ from the expected ones. {hint}")


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
