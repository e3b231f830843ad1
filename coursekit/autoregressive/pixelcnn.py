r"""PixelCNN and Gated PixelCNN: autoregressive models of images by masked convolutions.

A binary image ``x`` of shape ``(H, W)`` is flattened in raster order (row by row,
left to right), and

.. math:: p(x) = \prod_{r, c} p\big(x_{r,c} \mid x_{r',c'} : (r', c') \prec (r, c)\big),

where ``(r', c') \prec (r, c)`` means "earlier in raster order": every row above, and the
pixels to the left on the same row. A convolution computes all ``H W`` conditionals in
one pass (teacher forcing) once its kernels are masked so that no output sees its own
pixel or a later one.

* :class:`MaskedConv2d`: a ``k x k`` convolution whose kernel is zeroed right of the centre
  on the centre row and on every row below; type ``"A"`` also zeroes the centre (the first
  layer: the output at a pixel must not see that pixel), type ``"B"`` keeps it (later
  layers: the feature at a pixel already summarises only earlier pixels).
* :class:`PixelCNN`: one A layer, then B layers (van den Oord et al., 2016a). Stacking
  these masks leaves a *blind spot*: after ``L`` layers of ``3 x 3`` kernels, the output at
  ``(r, c)`` sees pixel ``(r - d, c + e)`` of row ``d`` above only for ``e <= d``, so pixels
  up and to the right that it is entitled to see are never seen
  (:func:`~coursekit.autoregressive.receptive_field.receptive_field` shows it).
* :class:`GatedPixelCNN`: the two-stack fix (van den Oord et al., 2016b). A *vertical* stack
  sees every row above, a *horizontal* stack the pixels to the left on the current row;
  the vertical stack feeds the horizontal one shifted down by one row, so it never passes
  on the current row. Gated activations :math:`\tanh(a) \odot \sigma(b)` and a residual
  connection in the horizontal stack. No blind spot.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from coursekit._validation import check_choice, check_count
from coursekit.autoregressive.base import AutoregressiveModel, count_parameters


def check_image_shape(image_shape, features: int) -> tuple[int, int]:
    """``image_shape`` as ``(H, W)`` with ``H * W == features``; ``None`` means square."""
    if image_shape is None:
        side = math.isqrt(features)
        if side * side != features:
            raise ValueError(f"image_shape: expected (H, W) with H * W = features = {features} "
                             f"(features is not a square, so give it), got None")
        return side, side
    if (not isinstance(image_shape, (tuple, list)) or len(image_shape) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                       for s in image_shape)):
        raise TypeError(f"image_shape: expected a pair of positive ints (H, W), "
                        f"got {image_shape!r}")
    height, width = image_shape
    if height * width != features:
        raise ValueError(f"image_shape: expected (H, W) with H * W = features = {features}, "
                         f"got {tuple(image_shape)}")
    return height, width


def _check_kernel(kernel_size) -> int:
    k = check_count(kernel_size, "kernel_size")
    if k % 2 == 0:
        raise ValueError(f"kernel_size: expected an odd int (the kernel has a centre), got {k}")
    return k


class MaskedConv2d(nn.Conv2d):
    r"""``k x k`` convolution (same padding) whose kernel sees only earlier pixels.

    The ``(k, k)`` mask buffer is 1 on every row above the centre and left of the centre on
    the centre row; type ``"B"`` also keeps the centre, type ``"A"`` does not. For ``k = 3``::

        A: 1 1 1      B: 1 1 1
           1 0 0         1 1 0
           0 0 0         0 0 0

    ``x: (batch, in_channels, H, W)`` -> ``(batch, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 mask_type: str = "A", bias: bool = True):
        k = _check_kernel(kernel_size)
        self.mask_type = check_choice(mask_type, "mask_type", ("A", "B"))
        super().__init__(check_count(in_channels, "in_channels"),
                         check_count(out_channels, "out_channels"), k, padding=k // 2, bias=bias)
        mask = torch.ones(k, k)
        centre = k // 2
        mask[centre, centre + (mask_type == "B"):] = 0
        mask[centre + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class _ImageAutoregressive(AutoregressiveModel):
    """Shared plumbing: flat ``(batch, H*W)`` in raster order <-> ``(batch, 1, H, W)``."""

    def _init_image(self, features: int, image_shape, output) -> None:
        self._init_autoregressive(features, output)
        self.image_shape = check_image_shape(image_shape, self.features)

    @property
    def n_parameters(self) -> int:
        return count_parameters(self)

    def conditional_params(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, H*W)`` -> ``(batch, H*W, output.n_params)``, raster order."""
        out = self._network(x.reshape(x.shape[0], 1, *self.image_shape))
        return out.flatten(2).transpose(1, 2)

    def _network(self, image: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H, W)`` -> ``(batch, output.n_params, H, W)``."""
        raise NotImplementedError


def _output_head(channels: int, n_params: int) -> nn.Sequential:
    """ReLU, 1x1 conv, ReLU, 1x1 conv to the parameters of each pixel's conditional."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(),
                         nn.Conv2d(channels, n_params, 1))


class PixelCNN(_ImageAutoregressive):
    r"""The original PixelCNN: masked convolutions A, B, ..., B with ReLUs, then 1x1 convs.

    .. math:: h_1 = \mathrm{conv}_A(x), \quad h_{l+1} = \mathrm{conv}_B(\mathrm{ReLU}(h_l)),
        \quad \ell_{r,c} = W_2\,\mathrm{ReLU}(W_1\,\mathrm{ReLU}(h_L))_{r,c}

    ``\ell_{r,c}`` parametrises ``p(x_{r,c} | earlier pixels)``. It has a blind spot (module
    doc).

    Args:
        features: ``H * W``.
        image_shape: ``(H, W)``; default square.
        channels: feature maps per layer.
        layers: number of masked convolutions (the first of type A).
        kernel_size: odd kernel size of the masked convolutions.
        output: output head (default Bernoulli: binary pixels, one logit each).
    """

    def __init__(self, features: int = 64, image_shape=None, channels: int = 32,
                 layers: int = 4, kernel_size: int = 3, output="bernoulli"):
        super().__init__()
        self._init_image(features, image_shape, output)
        channels, layers = check_count(channels, "channels"), check_count(layers, "layers")
        k = _check_kernel(kernel_size)
        convs = [MaskedConv2d(1, channels, k, "A")]
        for _ in range(layers - 1):
            convs += [nn.ReLU(), MaskedConv2d(channels, channels, k, "B")]
        self.convs = nn.Sequential(*convs)
        self.head = _output_head(channels, self.output.n_params)

    def _network(self, image):
        return self.head(self.convs(image))


def _gate(t: torch.Tensor) -> torch.Tensor:
    r"""Split channels in halves ``(a, b)`` and return :math:`\tanh(a) \odot \sigma(b)`."""
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def _shift_down(t: torch.Tensor) -> torch.Tensor:
    """Move every row one down (zeros on top): row ``r`` then holds row ``r - 1``."""
    return F.pad(t, (0, 0, 1, 0))[..., :-1, :]


class GatedLayer(nn.Module):
    r"""One layer of the two stacks (``p = k // 2``).

    * vertical: a ``(p + 1) x k`` convolution over rows ``r - p .. r``, columns
      ``c - p .. c + p`` (padded on top and at the sides): ``v' = gate(V * v)``;
    * horizontal: a ``1 x (p + 1)`` convolution over columns ``c - p .. c`` (the first layer
      shifts its input right by one, so it sees ``c - p - 1 .. c - 1``, never ``x_{r,c}``),
      plus a 1x1 link from the vertical pre-activations shifted down one row:
      ``h' = h + U\,gate(H * h + L\,\mathrm{shift}(V * v))`` (no residual in the first layer,
      whose input is the 1-channel image).

    ``v, h: (batch, in_channels, H, W)`` -> ``(v', h')``, each ``(batch, channels, H, W)``.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, first: bool):
        super().__init__()
        self.pad, self.first = kernel_size // 2, first
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (self.pad + 1, kernel_size))
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, self.pad + 1))
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.pad
        v_pre = self.vertical(F.pad(v, (p, p, p, 0)))
        if self.first:
            h_in = F.pad(h, (p + 1, 0))[..., :-1]
        else:
            h_in = F.pad(h, (p, 0))
        h_new = self.out(_gate(self.horizontal(h_in) + self.link(_shift_down(v_pre))))
        return _gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(_ImageAutoregressive):
    r"""Gated PixelCNN: vertical and horizontal stacks of :class:`GatedLayer`, no blind spot.

    After ``L`` layers of kernel ``k`` (``p = k // 2``) the output at ``(r, c)`` sees every
    pixel of rows ``r - L p - 1 .. r - 1`` within ``L p`` columns of ``c`` (the vertical stack,
    shifted down), and pixels left of ``c`` on row ``r`` (the horizontal stack); never
    ``x_{r,c}`` or a later pixel.

    Args:
        features: ``H * W``.
        image_shape: ``(H, W)``; default square.
        channels: feature maps per stack.
        layers: number of gated layers.
        kernel_size: odd kernel size (vertical ``(k//2 + 1) x k``, horizontal ``1 x (k//2 + 1)``).
        output: output head (default Bernoulli).
    """

    def __init__(self, features: int = 64, image_shape=None, channels: int = 16,
                 layers: int = 5, kernel_size: int = 5, output="bernoulli"):
        super().__init__()
        self._init_image(features, image_shape, output)
        channels, layers = check_count(channels, "channels"), check_count(layers, "layers")
        k = _check_kernel(kernel_size)
        self.layers = nn.ModuleList(
            GatedLayer(1 if i == 0 else channels, channels, k, first=i == 0)
            for i in range(layers))
        self.head = _output_head(channels, self.output.n_params)

    def _network(self, image):
        v = h = image
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)
