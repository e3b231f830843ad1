"""Argument checks shared by every coursekit module (private: import from coursekit modules only).

Every check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right
kind, wrong value) with one message form::

    <argument name>: expected <what was expected>, got <what was given>

so a student reading the error knows which argument to fix. Public functions
validate once at their edge with these helpers and then call an unchecked
kernel; models validate in their constructors and public methods.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_NUMBER_TYPES = (int, float, np.integer, np.floating)


# --------------------------------------------------------------------------------------
# Python numbers
# --------------------------------------------------------------------------------------
def check_count(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_number(value, name: str, low: float | None = None, strict: bool = False,
                 high: float | None = None) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES + (torch.Tensor,)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name}: expected a number, got a tensor of shape "
                            f"{tuple(value.shape)}")
        value = value.item()
    v = float(value)
    too_low = low is not None and (v < low or (strict and v == low))
    too_high = high is not None and v > high
    if not math.isfinite(v) or too_low or too_high:
        if low is not None and high is not None:
            bound = f" in {'(' if strict else '['}{low:g}, {high:g}]"
        elif low is not None:
            bound = f" {'>' if strict else '>='} {low:g}"
        else:
            bound = "" if high is None else f" <= {high:g}"
        raise ValueError(f"{name}: expected a finite number{bound}, got {value!r}")
    return v


def check_choice(value, name: str, choices: tuple) -> object:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {choices}, got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------------------
def as_float_tensor(value, name: str) -> torch.Tensor:
    """``value`` as a real floating tensor: tensors keep their dtype (integers become
    float64); NumPy arrays, lists and numbers become float64 tensors."""
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, (np.ndarray, list, tuple) + _NUMBER_TYPES) and not isinstance(
            value, bool):
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}: expected a tensor of numbers, got {value!r:.80}") from err
    else:
        raise TypeError(f"{name}: expected a torch.Tensor (or a NumPy array / list of "
                        f"numbers), got {type(value).__name__}")
    if t.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


def prepare(**named) -> list[torch.Tensor]:
    """The named arguments as floating tensors of one dtype on one device.

    The dtype is the promotion of the dtypes of the arguments that are torch
    tensors (array-likes follow them, as Python scalars do in torch; with no
    tensor at all everything is float64); the device is that of the first torch
    tensor. Returned in the order given.
    """
    tensors = {k: as_float_tensor(v, k) for k, v in named.items()}
    given = [tensors[k] for k, v in named.items() if isinstance(v, torch.Tensor)]
    device = given[0].device if given else None
    dtype = None
    for t in given or list(tensors.values()):
        dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
    return [t.to(device=device if device is not None else t.device, dtype=dtype)
            for t in tensors.values()]


def check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def check_positive(t: torch.Tensor, name: str, what: str = "values") -> None:
    """All entries finite and ``> 0``; ``what`` says what they are (e.g. ``variances``)."""
    check_finite(t, name)
    if bool((t <= 0).any()):
        raise ValueError(f"{name}: expected strictly positive {what}, got min {float(t.min()):.3g}")


def check_unit_interval(t: torch.Tensor, name: str, binary: bool = False) -> None:
    """Entries in ``[0, 1]`` (in ``{0, 1}`` with ``binary``)."""
    if binary:
        if bool(((t != 0) & (t != 1)).any()):
            raise ValueError(f"{name}: expected binary values in {{0, 1}}, got other values")
    elif bool(((t < 0) | (t > 1)).any()) or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected values in [0, 1], got min {float(t.min()):.3g}, "
                         f"max {float(t.max()):.3g}")


def check_vector(t: torch.Tensor, name: str, d: int | None = None, like: str = "") -> None:
    """``t`` of shape ``(..., d)`` with at least one dimension; ``like`` names the argument
    whose ``d`` it must match (for the message)."""
    if t.dim() < 1:
        raise ValueError(f"{name}: expected shape (..., d) with at least 1 dimension, "
                         "got a scalar")
    if d is not None and t.shape[-1] != d:
        source = f" like {like}" if like else ""
        raise ValueError(f"{name}: expected last dimension d={d}{source}, "
                         f"got shape {tuple(t.shape)}")


def check_rows(x, name: str, features: int) -> None:
    """``x`` is a finite tensor of shape ``(batch, features)``: the input of every density
    model with a fixed number of features (autoregressive models, flows)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape (batch, {features}), "
                        f"got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != features:
        raise ValueError(f"{name}: expected shape (batch, {features}), got {tuple(x.shape)}")
    check_finite(x, name)


def check_square(t: torch.Tensor, name: str, d: int | None = None) -> None:
    if t.dim() < 2 or t.shape[-1] != t.shape[-2]:
        raise ValueError(f"{name}: expected a square matrix of shape (..., d, d), "
                         f"got shape {tuple(t.shape)}")
    if d is not None and t.shape[-1] != d:
        raise ValueError(f"{name}: expected shape (..., {d}, {d}) to match the mean's d={d}, "
                         f"got shape {tuple(t.shape)}")


def check_batch_broadcast(named: dict[str, torch.Tensor], event_dims: int = 1) -> None:
    """The batch shapes (all but the last ``event_dims`` dimensions) broadcast together."""
    try:
        torch.broadcast_shapes(*(t.shape[:t.dim() - event_dims] for t in named.values()))
    except RuntimeError as err:
        shapes = ", ".join(f"{k} {tuple(t.shape)}" for k, t in named.items())
        raise ValueError(f"{'/'.join(named)}: expected batch shapes that broadcast, "
                         f"got {shapes}") from err


def check_event(named: dict[str, torch.Tensor]) -> int:
    """Tensors ``(..., d)`` with one event size ``d`` (no broadcasting along the last axis,
    which hides a transposed or mis-shaped argument) and broadcasting batch shapes.
    Returns ``d``."""
    first = next(iter(named))
    for k, t in named.items():
        check_vector(t, k)
    d = named[first].shape[-1]
    for k, t in named.items():
        check_vector(t, k, d, like=first)
    check_batch_broadcast(named)
    return d


def check_probs(p: torch.Tensor, name: str, dims: int = 1) -> None:
    """``p`` non-negative and summing to 1 over its last ``dims`` dimensions."""
    if p.dim() < dims:
        raise ValueError(f"{name}: expected probabilities of shape (..., k) with at least "
                         f"{dims} dimension(s), got shape {tuple(p.shape)}")
    check_finite(p, name)
    if bool((p < 0).any()):
        raise ValueError(f"{name}: expected non-negative probabilities, got min {float(p.min())}")
    total = p.sum(dim=tuple(range(-dims, 0)))
    tol = 1e-6 if p.dtype == torch.float64 else 1e-4
    if bool(((total - 1).abs() > tol).any()):
        worst = float(total.flatten()[(total - 1).abs().flatten().argmax()])
        raise ValueError(f"{name}: expected probabilities summing to 1 over the last "
                         f"{'axis' if dims == 1 else f'{dims} axes'}, got a sum of {worst:.6g}")


def as_data(X, name: str = "X", device=None, dtype: torch.dtype | None = None
            ) -> torch.Tensor:
    """``X`` as a finite, detached ``(n_samples, n_features)`` tensor of ``dtype`` (default:
    its own floating dtype, float64 for array-likes) on ``device`` (default: its own)."""
    if not isinstance(X, (torch.Tensor, np.ndarray, list, tuple)):
        raise TypeError(f"{name}: expected a torch.Tensor or a NumPy array of shape "
                        f"(n_samples, n_features), got {type(X).__name__}")
    t = as_float_tensor(X.detach() if isinstance(X, torch.Tensor) else X, name)
    if t.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D array of shape (n_samples, n_features), "
                         f"got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one sample and one feature, "
                         f"got shape {tuple(t.shape)}")
    device = check_device(device)
    t = t.to(device=device if device is not None else t.device, dtype=dtype or t.dtype)
    check_finite(t, name)
    return t


def check_device(device, name: str = "device") -> torch.device | None:
    """``None`` (leave tensors where they are) or a device this machine has, as a
    ``torch.device``; ``"auto"`` picks one (:func:`coursekit.runtime.get_device`).

    A device type torch does not know (``"tpu"``), or one this machine lacks
    (``"cuda"`` without CUDA), raises ``ValueError`` naming ``name`` and listing
    the devices that are available, instead of torch's driver error."""
    if device is None:
        return None
    from coursekit.runtime import get_device

    return get_device(device, arg=name)


def check_floating_dtype(dtype, name: str = "dtype") -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name}: expected a floating torch.dtype such as torch.float64, "
                        f"got {dtype!r}")
    return dtype


def as_generator(seed, name: str = "random_state", device="cpu") -> torch.Generator:
    """A ``torch.Generator`` from ``None`` (fresh entropy), a non-negative int or a generator
    (returned unchanged), for the ``random_state``/``generator`` arguments."""
    from coursekit.runtime import make_generator

    try:
        return make_generator(seed, device)
    except ValueError as err:
        raise ValueError(f"{name}: expected None, a non-negative int or a torch.Generator, "
                         f"got {seed!r}") from err
