"""Exceptions and warnings of coursekit's fitted estimators (mixtures, PPCA).

They *are* scikit-learn's classes (re-exported), so ``except NotFittedError`` catches
the error from a coursekit and a scikit-learn estimator alike, and warning filters
for ``sklearn.exceptions.ConvergenceWarning`` apply to coursekit's EM too.

* ``NotFittedError`` (a ``ValueError`` and ``AttributeError``): a method that needs
  fitted parameters was called before ``fit``.
* ``ConvergenceWarning`` (a ``UserWarning``): EM stopped at ``max_iter`` before the
  lower bound changed by less than ``tol``.
"""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = ["ConvergenceWarning", "NotFittedError"]
