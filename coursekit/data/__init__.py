"""Offline data: 2-D toy densities, scikit-learn's bundled digits, optional MNIST."""

from coursekit.data.digits import DIGITS_SPLIT, digits_loader, load_digits
from coursekit.data.mnist import MNISTUnavailableError, load_mnist
from coursekit.data.toy2d import (
    MODE_COLLAPSE,
    TOY2D,
    ToyDensity,
    get_toy2d,
    mode_centres,
    toy2d,
    toy2d_entropy,
    toy2d_log_prob,
)

__all__ = [
    "DIGITS_SPLIT",
    "MNISTUnavailableError",
    "MODE_COLLAPSE",
    "TOY2D",
    "ToyDensity",
    "digits_loader",
    "get_toy2d",
    "load_digits",
    "load_mnist",
    "mode_centres",
    "toy2d",
    "toy2d_entropy",
    "toy2d_log_prob",
]
