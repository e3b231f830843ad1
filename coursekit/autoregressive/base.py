r"""The contract every autoregressive model in coursekit follows.

An autoregressive model factorises a density with the chain rule under an
ordering :math:`o` (a permutation of the ``features`` dimensions):

.. math::
    p(x) = \prod_{i=1}^{n} p\big(x_{o_i} \mid x_{o_1}, \dots, x_{o_{i-1}}\big).

A subclass computes, in one pass with *teacher forcing* (the true ``x`` fed in
for the conditioning values), the parameters of every conditional:
``conditional_params(x) -> (batch, features, output.n_params)``, where entry
``[:, j]`` may depend only on the dimensions that come before ``j`` in the
ordering. The base class turns that into

* ``log_prob(x) -> (batch,)``: the exact log-likelihood, the sum of the
  conditionals' log-probabilities;
* ``sample(n, observed=..., observed_mask=...) -> (n, features)``: ancestral
  sampling, one dimension at a time in the ordering (``features`` passes), with any
  observed dimensions held fixed, which is how the models inpaint.

The distribution of one dimension given its parameters is an *output head*:
:class:`BernoulliOutput` (binary data, one logit), :class:`GaussianOutput`
(mean and log-scale) and :class:`MixtureOfGaussiansOutput` (``k`` weights, means and
log-scales).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from coursekit._validation import as_generator, check_count, check_rows
from coursekit.functional import LOG_2PI
from coursekit.runtime import module_dtype_device


class BernoulliOutput:
    r"""Binary ``x_j`` with ``p(x_j = 1) = \sigma(l_j)``; one parameter (the logit)."""

    n_params = 1

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``x: (batch, features)``, ``params: (batch, features, 1)`` -> ``(batch, features)``."""
        return -F.binary_cross_entropy_with_logits(params[..., 0], x, reduction="none")

    def sample(self, params: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One draw per entry: ``params (batch, k, 1)`` -> ``(batch, k)``."""
        return torch.bernoulli(torch.sigmoid(params[..., 0]), generator=generator)

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        if not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(f"{name}: expected binary values (0 or 1) for a Bernoulli "
                             "output; binarise the data (load_digits(binarize='static'))")


def _soft_log_scale(raw: torch.Tensor) -> torch.Tensor:
    """A log-scale soft-clamped to ``(-7, 5)``: ``6 tanh(raw / 6) - 1``."""
    return 6.0 * torch.tanh(raw / 6.0) - 1.0


class GaussianOutput:
    r"""Continuous ``x_j \sim N(\mu_j, e^{2 s_j})``; two parameters ``(\mu_j, s_j)``.

    The log-scale is soft-clamped to ``[-7, 5]`` (``tanh``), so no conditional can
    collapse to a spike of infinite density.
    """

    n_params = 2

    @staticmethod
    def _mean_log_scale(params):
        return params[..., 0], _soft_log_scale(params[..., 1])

    def log_prob(self, x, params):
        mean, log_scale = self._mean_log_scale(params)
        return -0.5 * LOG_2PI - log_scale - 0.5 * ((x - mean) * torch.exp(-log_scale)) ** 2

    def sample(self, params, generator):
        mean, log_scale = self._mean_log_scale(params)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + torch.exp(log_scale) * eps

    def check(self, x, name="x"):
        return None


class MixtureOfGaussiansOutput:
    r"""``x_j \sim \sum_c \pi_{jc} N(\mu_{jc}, e^{2 s_{jc}})``; ``3k`` parameters.

    Parameters are laid out as ``[mixture logits (k), means (k), log-scales (k)]``.
    """

    def __init__(self, components: int = 5):
        self.components = check_count(components, "components")
        self.n_params = 3 * self.components

    def _split(self, params):
        k = self.components
        logits, mean, raw = params[..., :k], params[..., k:2 * k], params[..., 2 * k:]
        return torch.log_softmax(logits, -1), mean, _soft_log_scale(raw)

    def log_prob(self, x, params):
        log_w, mean, log_scale = self._split(params)
        z = (x.unsqueeze(-1) - mean) * torch.exp(-log_scale)
        return torch.logsumexp(log_w - 0.5 * LOG_2PI - log_scale - 0.5 * z**2, dim=-1)

    def sample(self, params, generator):
        log_w, mean, log_scale = self._split(params)
        flat = log_w.exp().reshape(-1, self.components)
        c = torch.multinomial(flat, 1, generator=generator).reshape(log_w.shape[:-1] + (1,))
        mean, log_scale = mean.gather(-1, c)[..., 0], log_scale.gather(-1, c)[..., 0]
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + torch.exp(log_scale) * eps

    def check(self, x, name="x"):
        return None


OUTPUTS = {"bernoulli": BernoulliOutput, "gaussian": GaussianOutput,
           "mog": MixtureOfGaussiansOutput}


def make_output(output) -> BernoulliOutput | GaussianOutput | MixtureOfGaussiansOutput:
    """An output head from its name (``"bernoulli"``, ``"gaussian"``, ``"mog"``) or itself."""
    if isinstance(output, str):
        if output not in OUTPUTS:
            raise ValueError(f"output: expected one of {tuple(OUTPUTS)}, got {output!r}")
        return OUTPUTS[output]()
    if not all(hasattr(output, a) for a in ("n_params", "log_prob", "sample")):
        raise TypeError(f"output: expected a name in {tuple(OUTPUTS)} or an output head, "
                        f"got {type(output).__name__}")
    return output


def check_ordering(ordering, features: int, name: str = "ordering") -> torch.Tensor:
    """``ordering`` as a LongTensor permutation of ``range(features)`` (default: identity)."""
    if ordering is None:
        return torch.arange(features)
    order = torch.as_tensor(ordering, dtype=torch.long).flatten()
    if order.numel() != features or not torch.equal(order.sort().values, torch.arange(features)):
        raise ValueError(f"{name}: expected a permutation of 0..{features - 1}, "
                         f"got {order.tolist()}")
    return order


class AutoregressiveModel(nn.Module):
    r"""Base of every autoregressive density: ``p(x) = \prod_i p(x_{o_i} | x_{o_{<i}})``.

    Subclasses set ``self.features``, ``self.output`` (an output head) and the buffer
    ``self.ordering`` (call :meth:`_init_autoregressive`) and implement
    :meth:`conditional_params`.
    """

    features: int
    ordering: torch.Tensor

    def _init_autoregressive(self, features: int, output="bernoulli", ordering=None) -> None:
        self.features = check_count(features, "features")
        self.output = make_output(output)
        self.register_buffer("ordering", check_ordering(ordering, self.features))

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.features,)

    def conditional_params(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, features)`` -> ``(batch, features, output.n_params)`` (teacher forcing)."""
        raise NotImplementedError

    def _check_x(self, x, name: str = "x") -> torch.Tensor:
        check_rows(x, name, self.features)
        self.output.check(x, name)
        dtype, device = module_dtype_device(self, self.ordering.device)
        return x.to(device=device, dtype=dtype)

    def log_prob_per_dim(self, x: torch.Tensor) -> torch.Tensor:
        r"""``\log p(x_j \mid x_{<j})`` for every dimension: ``(batch, features)``."""
        x = self._check_x(x)
        return self.output.log_prob(x, self.conditional_params(x))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r"""Exact ``\log p(x) = \sum_j \log p(x_j \mid x_{<j})``, ``(batch,)``."""
        return self.log_prob_per_dim(x).sum(-1)

    def _sampling_start(self, n, observed, observed_mask, generator
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Generator | None]:
        """The checked start of ancestral sampling, shared by every sampler.

        Returns ``x (n, features)`` (the observed values where ``keep``, zeros elsewhere),
        ``keep (n, features)`` (bool) and the generator (``None`` for torch's global one).
        """
        n = check_count(n, "n")
        dtype, device = module_dtype_device(self, self.ordering.device)
        gen = None if generator is None else as_generator(generator, "generator", device)
        x = torch.zeros(n, self.features, device=device, dtype=dtype)
        keep = torch.zeros(n, self.features, dtype=torch.bool, device=device)
        if (observed is None) != (observed_mask is None):
            raise ValueError("observed, observed_mask: give both or neither")
        if observed is not None:
            observed = torch.as_tensor(observed, dtype=dtype, device=device)
            keep = torch.as_tensor(observed_mask, dtype=torch.bool, device=device)
            for name, t in (("observed", observed), ("observed_mask", keep)):
                if tuple(t.shape) not in ((self.features,), (n, self.features)):
                    raise ValueError(f"{name}: expected shape ({self.features},) or "
                                     f"({n}, {self.features}), got {tuple(t.shape)}")
            keep = keep.expand(n, -1)
            x = self._check_x(torch.where(keep, observed.expand(n, -1), x), "observed")
        return x, keep, gen

    @torch.no_grad()
    def sample(self, n: int, observed: torch.Tensor | None = None,
               observed_mask: torch.Tensor | None = None,
               generator: torch.Generator | int | None = None) -> torch.Tensor:
        """Ancestral sampling in the model's ordering: ``features`` network passes.

        Args:
            n: number of samples.
            observed: optional ``(n, features)`` or ``(features,)`` values to condition on.
            observed_mask: boolean, same shape as ``observed``; True where the value is
                given (kept) and False where it is sampled. Every dimension is sampled from
                its conditional given all earlier ones, observed or sampled; this is exact
                conditioning only when the observed dimensions come first in the
                ordering (for example the top half of a digit in raster order).
            generator: a ``torch.Generator`` or seed.

        Returns:
            ``(n, features)``.
        """
        x, keep, gen = self._sampling_start(n, observed, observed_mask, generator)
        was_training = self.training
        self.eval()
        try:
            for j in self.ordering.tolist():
                params = self.conditional_params(x)[:, j:j + 1]
                draw = self.output.sample(params, gen)[:, 0]
                x[:, j] = torch.where(keep[:, j], x[:, j], draw)
        finally:
            self.train(was_training)
        return x


def nll_loss(model: AutoregressiveModel, batch) -> torch.Tensor:
    """``fit`` loss for any density model: mean NLL of ``batch`` (a tensor or ``(x, y)``)."""
    x = batch[0] if isinstance(batch, (list, tuple)) else batch
    return -model.log_prob(x).mean()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars (what parameter-count formulas are checked against)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
