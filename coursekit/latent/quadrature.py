r"""``log p(x)``, the ELBO and the KL gap of a 1-D latent, exactly, by quadrature (lecture 03).

For a fixed ``x`` and any Gaussian ``q(z) = N(mean, std^2)``

.. math::
    \log p(x) = \underbrace{\mathbb E_q[\log p(x, z)] + H(q)}_{\mathrm{ELBO}(q)}
    + \underbrace{\mathrm{KL}(q \,\|\, p(z \mid x))}_{\ge 0} .

With one latent dimension every term is an integral over a grid, so the identity
can be checked to many digits without sampling. :data:`POSTERIORS` holds two
example posteriors (a Gaussian and a mixture of two) with the joint
``p(x, z) = exp(LOG_PX) p(z | x)``; :func:`elbo_by_quadrature` works for any
unnormalised joint evaluated on a grid.

NumPy in, NumPy out (quadrature grids and the plots of ``ELBOGapExplorer``); the
Gaussian densities are :mod:`coursekit.functional`'s kernels in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from coursekit import functional as F
from coursekit._validation import check_choice, check_number

__all__ = ["LOG_PX", "POSTERIORS", "elbo_by_quadrature", "log_joint", "log_posterior"]

# numpy >= 2 renamed trapz to trapezoid
_trapezoid = getattr(np, "trapezoid", None) or np.trapz

LOG_PX = -2.0
"""``log p(x)`` of the example joints: ``log p(x, z) = LOG_PX + log p(z | x)``."""

POSTERIORS = {
    # name: list of (weight, mean, std) of the Gaussian components of p(z|x)
    "unimodal": [(1.0, 1.5, 1.2)],
    "bimodal": [(0.35, -3.0, 0.8), (0.65, 2.0, 1.0)],
}
"""The example posteriors ``p(z | x)``: name -> ``[(weight, mean, std), ...]``."""


def _log_normal(z: np.ndarray, mean: float, std: float) -> np.ndarray:
    """``log N(z; mean, std^2)`` elementwise on a float64 array."""
    z = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float64))
    var = torch.tensor([std * std], dtype=torch.float64)
    return F._log_normal_diag(z[..., None], mean, var).numpy()


def log_posterior(z, posterior: str) -> np.ndarray:
    r"""``log p(z | x)`` of a named posterior (:data:`POSTERIORS`), elementwise.

    .. math::
        \log p(z \mid x) = \log \sum_k \pi_k\, N(z; m_k, s_k^2)

    Args:
        z: array-like of any shape.
        posterior: ``"unimodal"`` or ``"bimodal"``.

    Returns:
        NumPy float64 array of ``z``'s shape.
    """
    check_choice(posterior, "posterior", tuple(POSTERIORS))
    z = torch.from_numpy(np.array(z, dtype=np.float64))
    weights, means, stds = (torch.tensor(c, dtype=torch.float64)
                            for c in zip(*POSTERIORS[posterior]))
    return F._log_normal_mixture(z[..., None], means[:, None], (stds**2)[:, None],
                                 weights.log()).numpy()


def log_joint(z, posterior: str) -> np.ndarray:
    """``log p(x, z) = LOG_PX + log p(z | x)`` of a named posterior, elementwise."""
    return LOG_PX + log_posterior(z, posterior)


def elbo_by_quadrature(z, log_joint_values, mean: float, std: float) -> dict:
    r"""``log p(x)``, ``ELBO(q)`` and ``KL(q || p(z|x))`` for ``q = N(mean, std^2)``.

    All three by the trapezoid rule on the grid ``z``, from the *unnormalised*
    joint ``log p(x, z)``:

    .. math::
        \log p(x) = \log \int p(x, z)\, dz, \qquad
        \mathrm{ELBO} = \int q \,(\log p(x, z) - \log q), \qquad
        \mathrm{KL} = \int q \,(\log q - \log p(z \mid x))

    with ``log p(z|x) = log p(x, z) - log p(x)`` using the quadrature ``log p(x)``,
    so ``elbo + kl == log_px`` up to rounding. The grid must hold the mass of both
    the joint and ``q`` (``q_mass`` reports the latter).

    Args:
        z: ``(m,)`` increasing grid; log_joint_values: ``(m,)`` ``log p(x, z)`` on it.
        mean, std: the Gaussian ``q`` (``std > 0``).

    Returns:
        dict with floats ``log_px``, ``elbo``, ``kl``, ``q_mass`` and ``(m,)`` arrays
        ``log_q`` and ``log_post`` (``log p(z | x)``).
    """
    z = np.asarray(z, dtype=np.float64)
    lj = np.asarray(log_joint_values, dtype=np.float64)
    if z.ndim != 1 or z.size < 2 or not np.all(np.diff(z) > 0):
        raise ValueError(f"z: expected an increasing 1-D grid of at least 2 points, "
                         f"got shape {z.shape}")
    if lj.shape != z.shape:
        raise ValueError(f"log_joint_values: expected shape {z.shape} like z, got {lj.shape}")
    mean = check_number(mean, "mean")
    std = check_number(std, "std", low=0, strict=True)
    m = lj.max()
    log_px = float(m + math.log(_trapezoid(np.exp(lj - m), z)))
    log_q = _log_normal(z, mean, std)
    q = np.exp(log_q)
    log_post = lj - log_px
    return {
        "log_px": log_px,
        # log_q stays finite where q underflows to 0, so those points add 0
        "elbo": float(_trapezoid(q * (lj - log_q), z)),
        "kl": float(_trapezoid(q * (log_q - log_post), z)),
        "q_mass": float(_trapezoid(q, z)),
        "log_q": log_q,
        "log_post": log_post,
    }
