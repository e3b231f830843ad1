r"""Receptive fields by gradients: which input pixels one conditional depends on.

For an autoregressive model with conditional parameters ``\ell_j(x)`` (teacher forcing),
input ``x_i`` is in the receptive field of output ``j`` iff
:math:`\partial \ell_j / \partial x_i \ne 0` somewhere. Evaluated at a few random
continuous inputs with random weights, a zero gradient means "not connected" (a chance
zero on every input is vanishingly unlikely). The autoregressive property says the field
of ``j`` lies inside ``{i : i before j}``; PixelCNN's blind spot is the part of that set
its field misses.
"""

from __future__ import annotations

import torch

from coursekit._validation import as_generator, check_count
from coursekit.autoregressive.base import AutoregressiveModel
from coursekit.autoregressive.pixelcnn import check_image_shape
from coursekit.runtime import module_dtype_device


def _flat_position(position, image_shape: tuple[int, int]) -> int:
    height, width = image_shape
    if isinstance(position, (tuple, list)) and len(position) == 2:
        row, col = position
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (row, col)):
            raise TypeError(f"position: expected a flat index or (row, col) ints, "
                            f"got {position!r}")
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(f"position: expected (row, col) inside an image of shape "
                             f"{image_shape}, got {tuple(position)}")
        return row * width + col
    if isinstance(position, bool) or not isinstance(position, int):
        raise TypeError(f"position: expected a flat index or (row, col) ints, got {position!r}")
    if not 0 <= position < height * width:
        raise ValueError(f"position: expected a flat index in [0, {height * width}), "
                         f"got {position}")
    return position


def receptive_field(model: AutoregressiveModel, position, image_shape=None,
                    n_inputs: int = 4, as_mask: bool = True, generator=0) -> torch.Tensor:
    r"""The inputs that the conditional at ``position`` depends on, as an ``(H, W)`` image.

    Computes :math:`g_i = \sum_m |\partial \ell_j(u_m) / \partial u_{m,i}|` (summed over the
    output head's parameters) for ``n_inputs`` inputs ``u_m`` uniform on ``[0, 1]^n``, with
    the model in eval mode (no dropout).

    Args:
        model: any :class:`AutoregressiveModel`.
        position: the output: a flat raster index ``j`` or ``(row, col)``.
        image_shape: ``(H, W)``; default ``model.image_shape`` if it has one, else square.
        n_inputs: how many random inputs the gradients are summed over.
        as_mask: return ``g > 0`` (bool) rather than the magnitudes ``g`` (float).
        generator: seed or ``torch.Generator`` of the random inputs.

    Returns:
        ``(H, W)`` bool (or float) tensor.
    """
    if not isinstance(model, AutoregressiveModel):
        raise TypeError(f"model: expected an AutoregressiveModel, got {type(model).__name__}")
    if image_shape is None:
        image_shape = getattr(model, "image_shape", None)
    image_shape = check_image_shape(image_shape, model.features)
    j = _flat_position(position, image_shape)
    n_inputs = check_count(n_inputs, "n_inputs")
    dtype, device = module_dtype_device(model, model.ordering.device)
    gen = as_generator(generator, "generator")
    u = torch.rand(n_inputs, model.features, generator=gen, dtype=dtype).to(device)
    u.requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        (grad,) = torch.autograd.grad(model.conditional_params(u)[:, j].sum(), u)
    finally:
        model.train(was_training)
    magnitude = grad.abs().sum(0).reshape(image_shape)
    return magnitude > 0 if as_mask else magnitude
