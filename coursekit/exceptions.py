"""Exceptions and warnings of coursekit's fitted estimators (mixtures, PPCA)."""

from __future__ import annotations

__all__ = ["ConvergenceWarning", "NotFittedError"]


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound changed by less than ``tol``."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs fitted parameters was called before ``fit``/``initialize``."""
