r"""MADE: the masked autoencoder for distribution estimation (Germain et al., 2015).

An autoencoder ``x -> h -> x_hat`` is not a density: output ``j`` sees ``x_j``
itself. MADE multiplies every weight matrix by a 0/1 mask built from *degrees*
(:mod:`~coursekit.autoregressive.masks`), so that output ``j`` depends only on the
inputs before ``j`` in the ordering; one pass then gives every conditional

.. math::
    p(x) = \prod_{i=1}^{n} p\big(x_{o_i} \mid \theta_{o_i}(x_{o_{<i}})\big),

with :math:`\theta_j` the ``n_params`` parameters of an output head (a Bernoulli
logit, a Gaussian mean and log-scale, or a mixture of Gaussians: lecture 06's MAF
reuses the Gaussian one on continuous data).

*Order- and connectivity-agnostic training.* With ``num_masks = K > 1`` the model
keeps ``K`` draws of (ordering, hidden degrees) and :meth:`MADE.next_mask` moves to
the next; training with :func:`order_agnostic_loss` changes the mask every step,
so one set of weights learns ``K`` autoregressive models. Their average

.. math:: p(x) = \frac{1}{K} \sum_{k=1}^{K} p_k(x)

is itself a density (a mixture), computed by :meth:`MADE.log_prob_ensemble`.
"""

from __future__ import annotations

import torch
from torch import nn

from coursekit._validation import as_generator, check_count
from coursekit.autoregressive.base import AutoregressiveModel, nll_loss
from coursekit.autoregressive.masks import (
    MaskedLinear,
    hidden_degrees,
    hidden_mask,
    input_degrees,
    output_mask,
)
from coursekit.functional import log_mean_exp


class MADE(AutoregressiveModel):
    r"""A masked MLP whose output ``j`` gives the parameters of :math:`p(x_j \mid x_{<j})`.

    Args:
        features: ``n``, the number of dimensions.
        hidden_sizes: the widths of the hidden layers (at least one).
        output: ``"bernoulli"`` (binary data), ``"gaussian"``, ``"mog"`` or an output head
            (see :mod:`~coursekit.autoregressive.base`).
        ordering: the first mask's ordering (default: the identity); its hidden degrees
            cycle through ``1..n-1`` so that every degree is present.
        num_masks: ``K``; masks ``2..K`` draw a random ordering and random hidden degrees.
        seed: an int or ``torch.Generator`` for those draws.
        activation: the hidden non-linearity, an ``nn.Module`` class.

    Attributes:
        orderings: ``(K, n)`` buffer, the ordering of each mask.
        mask_index: the mask in use (``self.ordering`` is ``orderings[mask_index]``).

    Train one mask with ``fit(made, nll_loss, x_train, ...)``; several with
    ``fit(made, order_agnostic_loss, x_train, ...)`` and evaluate with
    :meth:`log_prob_ensemble`.
    """

    def __init__(self, features: int, hidden_sizes=(256,), output="bernoulli", ordering=None,
                 num_masks: int = 1, seed=0, activation=nn.ReLU):
        super().__init__()
        self._init_autoregressive(features, output, ordering)
        sizes = tuple(hidden_sizes) if isinstance(hidden_sizes, (list, tuple)) else None
        if not sizes:
            raise ValueError(f"hidden_sizes: expected a non-empty list of ints, "
                             f"got {hidden_sizes!r}")
        self.hidden_sizes = tuple(check_count(s, "hidden_sizes") for s in sizes)
        self.num_masks = check_count(num_masks, "num_masks")
        if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
            raise TypeError(f"activation: expected an nn.Module class such as nn.ReLU, "
                            f"got {activation!r}")
        n, n_params = self.features, self.output.n_params
        widths = (n,) + self.hidden_sizes
        self.hidden_layers = nn.ModuleList(MaskedLinear(a, b) for a, b in zip(widths, widths[1:]))
        self.output_layer = MaskedLinear(widths[-1], n * n_params)
        self.activation = activation()
        self._draw_masks(as_generator(seed, "seed"))
        self.register_buffer("mask_index", torch.zeros((), dtype=torch.long))
        self.set_mask(0)

    def _draw_masks(self, gen: torch.Generator) -> None:
        """Buffers ``orderings (K, n)`` and ``degrees_l (K, width_l)`` per hidden layer."""
        n, K = self.features, self.num_masks
        orderings = [self.ordering] + [torch.randperm(n, generator=gen) for _ in range(K - 1)]
        self.register_buffer("orderings", torch.stack(orderings))
        for layer, size in enumerate(self.hidden_sizes):
            degrees = [hidden_degrees(size, n, mode="cycle")]
            degrees += [hidden_degrees(size, n, gen, mode="random") for _ in range(K - 1)]
            self.register_buffer(f"degrees_{layer}", torch.stack(degrees))

    def set_mask(self, index: int) -> None:
        """Use mask ``index`` (``0..K-1``): set every layer's mask and ``self.ordering``."""
        if isinstance(index, bool) or not isinstance(index, int) or not (
                0 <= index < self.num_masks):
            raise ValueError(f"index: expected an int in [0, {self.num_masks - 1}], "
                             f"got {index!r}")
        ordering = self.orderings[index]
        degrees = [input_degrees(ordering)]
        degrees += [getattr(self, f"degrees_{layer}")[index]
                    for layer in range(len(self.hidden_sizes))]
        for layer, (a, b) in zip(self.hidden_layers, zip(degrees, degrees[1:])):
            layer.set_mask(hidden_mask(a, b))
        out = output_mask(degrees[-1], degrees[0])  # (n, width): one row per dimension
        self.output_layer.set_mask(out.repeat_interleave(self.output.n_params, dim=0))
        self.ordering.copy_(ordering)
        self.mask_index.fill_(index)

    def next_mask(self) -> None:
        """Move to the next mask (cyclically); a no-op with ``num_masks == 1``."""
        self.set_mask((int(self.mask_index) + 1) % self.num_masks)

    def masks(self) -> list[torch.Tensor]:
        """The current ``(out, in)`` masks, the output layer's with one row per dimension
        (for :func:`~coursekit.autoregressive.masks.connectivity`)."""
        layers = [layer.mask for layer in self.hidden_layers]
        return layers + [self.output_layer.mask[::self.output.n_params]]

    def conditional_params(self, x: torch.Tensor) -> torch.Tensor:
        r"""One masked pass: ``x (batch, n)`` -> ``(batch, n, n_params)``.

        :math:`h^{(l)} = g(W^{(l)} \odot M^{(l)}\, h^{(l-1)} + b^{(l)})`, :math:`h^{(0)} = x`;
        the output layer's ``n * n_params`` rows are grouped by dimension, so row
        ``j * n_params + p`` is parameter ``p`` of dimension ``j``.
        """
        h = x
        for layer in self.hidden_layers:
            h = self.activation(layer(h))
        return self.output_layer(h).reshape(x.shape[0], self.features, self.output.n_params)

    def log_prob_ensemble(self, x: torch.Tensor, n_masks: int | None = None) -> torch.Tensor:
        r"""``log((1/K) sum_k p_k(x))`` over the first ``n_masks`` masks: ``(batch,)``.

        A mixture of ``K`` autoregressive models, so a normalised density. The mask in
        use is restored afterwards.
        """
        n_masks = self.num_masks if n_masks is None else check_count(n_masks, "n_masks")
        if n_masks > self.num_masks:
            raise ValueError(f"n_masks: expected at most num_masks={self.num_masks}, "
                             f"got {n_masks}")
        current = int(self.mask_index)
        try:
            log_probs = []
            for index in range(n_masks):
                self.set_mask(index)
                log_probs.append(self.log_prob(x))
        finally:
            self.set_mask(current)
        return log_mean_exp(torch.stack(log_probs), dim=0)

    def extra_repr(self) -> str:
        return (f"features={self.features}, hidden_sizes={self.hidden_sizes}, "
                f"output={type(self.output).__name__}, num_masks={self.num_masks}")


def order_agnostic_loss(model: MADE, batch) -> torch.Tensor:
    """``fit`` loss for order-agnostic training: ``model.next_mask()``, then the mean NLL.

    Use as ``fit(made, order_agnostic_loss, x_train, ...)``; evaluate the trained model
    with :meth:`MADE.log_prob_ensemble` (also for ``fit``'s ``val_data``: this loss changes
    the mask on every call, validation batches included).
    """
    model.next_mask()
    return nll_loss(model, batch)
