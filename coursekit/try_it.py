r"""The "Try it" exercises in the lectures: a cell the student completes, then a check.

The pattern in a notebook, three cells:

1. the exercise, with the student's placeholder::

       answer = ...  # your code: the KL divergence in nats

2. the check, which says "not attempted yet" while the placeholder is ``...`` or
   ``None`` and raises ``AssertionError`` with a hint when the answer is wrong::

       check_answer("kl", answer, expected=reference_value)

3. the worked answer, in a cell whose source is collapsed (``jupyter.source_hidden``),
   which computes the answer and passes the same check, so every run of the notebook
   (and CI) proves the worked answer right.
"""

from __future__ import annotations

import numpy as np
import torch

NOT_ATTEMPTED = (None, Ellipsis)


def _as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def check_answer(name: str, answer, expected, *, rtol: float = 1e-3, atol: float = 1e-6,
                 hint: str = "") -> bool:
    """Compare a Try-it answer with the expected value.

    Args:
        name: what the exercise computes (shown in the messages).
        answer: the student's value (number, array or tensor); ``...`` or ``None``
            means not attempted yet.
        expected: the reference value, computed independently in the notebook.
        rtol, atol: tolerances of ``numpy.allclose``.
        hint: added to the message when the answer is wrong.

    Returns:
        True when the answer matches; False (and a printed note) when not attempted.

    Raises:
        AssertionError: the answer has the wrong shape or value.
    """
    if any(answer is placeholder for placeholder in NOT_ATTEMPTED):
        print(f"Try it ({name}): not attempted yet. Fill in the cell above, "
              "or expand the worked answer below.")
        return False
    got, want = _as_array(answer), _as_array(expected)
    if got.shape != want.shape:
        raise AssertionError(f"Try it ({name}): expected shape {want.shape}, got {got.shape}. "
                             f"{hint}".rstrip())
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        raise AssertionError(f"Try it ({name}): not yet right (got {np.round(got, 4)}, "
                             f"expected about {np.round(want, 4)}). {hint}".rstrip())
    print(f"Try it ({name}): correct.")
    return True
