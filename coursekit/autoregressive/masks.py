r"""MADE's masks: how an autoencoder becomes an autoregressive model.

Each input unit gets a *degree*: its position in the ordering, ``1..n``
(``m(x_{o_i}) = i``). Each hidden unit gets a degree in ``[1, n-1]``; a unit of
degree ``d`` may only see inputs of degree ``<= d``. So

* input/hidden -> hidden: connect ``k -> l`` iff ``m(l) >= m(k)``;
* hidden -> output: connect ``k -> j`` iff ``m(j) > m(k)`` (strictly), with the
  output of ``x_j`` carrying the degree of input ``x_j``.

Output ``j`` then depends only on inputs of smaller degree: exactly the
autoregressive property for the ordering. A mask is a ``(out, in)`` 0/1 matrix,
laid over a weight matrix of the same shape (``nn.Linear`` stores ``(out, in)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from coursekit._validation import as_generator, check_count


def input_degrees(ordering: torch.Tensor) -> torch.Tensor:
    """Degree of each input: ``degrees[ordering[i]] = i + 1``. ``(n,)`` -> ``(n,)``."""
    ordering = torch.as_tensor(ordering, dtype=torch.long)
    degrees = torch.empty_like(ordering)
    degrees[ordering] = torch.arange(1, len(ordering) + 1, device=ordering.device)
    return degrees


def hidden_degrees(n_units: int, features: int, generator=None, mode: str = "cycle"
                   ) -> torch.Tensor:
    """Degrees in ``[1, features - 1]`` for a hidden layer of ``n_units``.

    ``mode="cycle"`` spreads them evenly (``1, 2, ..., n-1, 1, 2, ...``), which keeps every
    degree present; ``mode="random"`` draws them uniformly (as in the MADE paper).
    With ``features == 1`` there is nothing to condition on and every degree is 0.
    """
    n_units = check_count(n_units, "n_units")
    if features == 1:
        return torch.zeros(n_units, dtype=torch.long)
    if mode == "cycle":
        return torch.arange(n_units) % (features - 1) + 1
    if mode == "random":
        gen = as_generator(generator, "generator")
        return torch.randint(1, features, (n_units,), generator=gen)
    raise ValueError(f"mode: expected 'cycle' or 'random', got {mode!r}")


def hidden_mask(in_degrees: torch.Tensor, out_degrees: torch.Tensor) -> torch.Tensor:
    """``(out, in)`` mask with 1 where ``out_degree >= in_degree`` (into a hidden layer)."""
    return (out_degrees[:, None] >= in_degrees[None, :]).to(torch.float32)


def output_mask(in_degrees: torch.Tensor, out_degrees: torch.Tensor) -> torch.Tensor:
    """``(out, in)`` mask with 1 where ``out_degree > in_degree`` (into the outputs)."""
    return (out_degrees[:, None] > in_degrees[None, :]).to(torch.float32)


def made_masks(ordering, hidden_sizes, generator=None, mode: str = "cycle"
               ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """All of MADE's masks for an ordering and hidden layer sizes.

    Returns:
        ``(masks, degrees)``: ``masks[l]`` is the ``(out, in)`` mask of layer ``l``
        (``len(hidden_sizes) + 1`` layers, the last into the ``n`` outputs);
        ``degrees[0]`` are the input degrees, then one entry per hidden layer.
    """
    degrees = [input_degrees(ordering)]
    n = len(degrees[0])
    gen = None if mode == "cycle" else as_generator(generator, "generator")
    for size in hidden_sizes:
        degrees.append(hidden_degrees(size, n, gen, mode))
    masks = [hidden_mask(a, b) for a, b in zip(degrees[:-1], degrees[1:])]
    masks.append(output_mask(degrees[-1], degrees[0]))
    return masks, degrees


def connectivity(masks: list[torch.Tensor]) -> torch.Tensor:
    """``(n_out, n_in)`` 0/1 matrix: 1 where some path leads from input ``i`` to output ``j``.

    The product of the masks, clipped to 0/1. For MADE it is strictly lower-triangular
    once rows and columns are put in the ordering.
    """
    path = masks[0]
    for mask in masks[1:]:
        path = (mask @ path).clamp(max=1.0)
    return path


class MaskedLinear(nn.Linear):
    """``nn.Linear`` whose weight is multiplied by a fixed 0/1 ``mask`` of shape ``(out, in)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask: torch.Tensor) -> None:
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask: expected shape {tuple(self.weight.shape)}, "
                             f"got {tuple(mask.shape)}")
        self.mask.copy_(mask.to(self.mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)
