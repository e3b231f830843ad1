r"""The shared base of coursekit's fitted estimators: scikit-learn estimators computing in torch.

:class:`TorchEstimator` is a :class:`sklearn.base.BaseEstimator`, so every estimator
built on it (``GaussianMixture``, ``BernoulliMixture``, ``PPCA``, ``MixturePPCA``) has
``get_params``/``set_params``, works with ``clone``, ``Pipeline``, ``GridSearchCV``,
``check_is_fitted`` and pickling, and follows scikit-learn's rules:

* ``__init__`` only stores its arguments; they are validated at ``fit`` time against
  the class's ``_parameter_constraints`` (scikit-learn's ``_fit_context``), and a bad
  value raises ``InvalidParameterError`` (a ``ValueError``) naming the parameter;
* ``random_state`` is ``None``, an int, a ``numpy.random.RandomState`` (through
  ``check_random_state``) or a ``torch.Generator``; :meth:`_generator` turns it into
  the ``torch.Generator`` the computation draws from. An int seeds torch directly, so
  the same int gives the same fit; a ``RandomState`` (or ``None``: NumPy's global
  state) supplies a fresh seed at every fit, as in scikit-learn;
* ``NotFittedError`` and ``ConvergenceWarning`` are scikit-learn's classes.

**Array in, same array out.** The computation is torch, always; what comes back
follows what went in:

==================  ===========================================  =========================
``X`` of ``fit``    fitted attributes (``means_``, ``W_``, ...)  computed on
==================  ===========================================  =========================
NumPy array, list   NumPy arrays                                 CPU (or ``device=``)
``torch.Tensor``    tensors                                      its device (or ``device=``)
==================  ===========================================  =========================

The dtype follows scikit-learn: float64 and float32 input keep their dtype, anything
else (ints, bools, float16) becomes float64; ``dtype=`` overrides it. The outputs of
a method (``predict``, ``score_samples``, ``transform``, ...) follow *that method's*
``X``: NumPy in, NumPy out; a tensor in, a tensor on the tensor's device out (computed
where the fitted parameters live). Methods without ``X`` (``sample``) answer in the
kind of the fitted attributes. Scalars (``score``, ``bic``, ``lower_bound_``) are
Python floats. NumPy attributes share memory with the torch tensors inside (no copy
on the CPU).

A subclass declares its array-valued fitted attributes with :class:`FittedArray`
(stored as tensors in ``self._fitted``, shown in the kind of the ``fit`` input) and
uses :meth:`_fit_input`, :meth:`_input` and :meth:`_output` at its public edges.
"""

from __future__ import annotations

import numbers
import re

import numpy as np
import scipy.sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted, validate_data

from coursekit.runtime import get_device

__all__ = ["FittedArray", "TorchEstimator", "torch_generator"]

_FLOAT_DTYPES = (torch.float64, torch.float32)


def torch_generator(random_state) -> torch.Generator:
    """A CPU ``torch.Generator`` from scikit-learn's ``random_state`` (or a generator).

    ``torch.Generator``: returned unchanged. Int: seeds torch with it. ``None`` or a
    ``numpy.random.RandomState``: ``check_random_state(random_state)`` draws the seed
    (so a ``RandomState`` advances, and ``None`` uses NumPy's global state).
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    rng = check_random_state(random_state)  # validates; RandomState for None/int/RandomState
    if isinstance(random_state, numbers.Integral):
        seed = int(random_state)
    else:
        seed = int(rng.randint(np.iinfo(np.int32).max))
    return torch.Generator().manual_seed(seed)


class FittedArray:
    """A fitted array attribute: a torch tensor kept in ``obj._fitted[name]``, returned as a
    NumPy array when the estimator was fitted on NumPy input (else as the tensor).

    Assigning sets the tensor (NumPy values are converted to the fitted dtype/device).
    Before ``fit`` the attribute does not exist (``hasattr`` is False), as in scikit-learn.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        fitted = obj.__dict__.get("_fitted", {})
        if self.name not in fitted:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r} "
                                 "(not fitted yet)")
        return obj._export(fitted[self.name])

    def __set__(self, obj, value) -> None:
        obj.__dict__.setdefault("_fitted", {})[self.name] = obj._import(value)


class TorchEstimator(BaseEstimator):
    """Base class: scikit-learn estimator API, torch computation (see the module docstring).

    Subclasses define ``_parameter_constraints`` (merged with this class's entries for
    ``random_state``, ``device`` and ``dtype``), decorate ``fit`` with scikit-learn's
    ``_fit_context`` and declare fitted arrays with :class:`FittedArray`.
    """

    _parameter_constraints: dict = {
        "random_state": ["random_state", torch.Generator],
        "device": [None, str, torch.device],
        "dtype": [None, torch.dtype],
    }

    # ----------------------------------------------------------------- parameters
    def _validate_params(self) -> None:
        """scikit-learn's validation, with the project's message form ``<name>: ...``."""
        try:
            super()._validate_params()
        except InvalidParameterError as err:
            found = re.search(r"The '(\w+)' parameter", str(err))
            name = found.group(1) if found else "parameter"
            raise InvalidParameterError(f"{name}: expected a valid value; {err}") from None
        if self.dtype is not None and not (isinstance(self.dtype, torch.dtype)
                                           and self.dtype.is_floating_point):
            raise InvalidParameterError(f"dtype: expected None or a floating torch.dtype such "
                                        f"as torch.float64, got {self.dtype!r}")

    def _generator(self, generator=None) -> torch.Generator:
        """``generator`` (a ``torch.Generator`` or an int seed) if given, else one made
        from ``random_state`` by :func:`torch_generator`."""
        if generator is not None:
            if isinstance(generator, bool) or not isinstance(
                    generator, (torch.Generator, numbers.Integral)) or (
                    isinstance(generator, numbers.Integral) and generator < 0):
                raise ValueError(f"generator: expected a torch.Generator or a non-negative "
                                 f"int seed, got {generator!r}")
            return torch_generator(generator)
        return torch_generator(self.random_state)

    # ----------------------------------------------------------------- fitted state
    def __sklearn_is_fitted__(self) -> bool:
        return bool(self.__dict__.get("_fitted"))

    def _require_fitted(self) -> None:
        check_is_fitted(self, msg=f"this {type(self).__name__} is not fitted yet; call fit(X) "
                                  "first (NotFittedError)")

    def _export(self, t: torch.Tensor):
        """A fitted tensor in the kind of the ``fit`` input (NumPy array or tensor)."""
        if self.__dict__.get("_numpy_out", False):
            return t.detach().cpu().numpy()
        return t

    def _import(self, value) -> torch.Tensor:
        """A value for a fitted attribute as a tensor of the fitted dtype on the fitted device."""
        device = self.__dict__.get("_device", torch.device("cpu"))
        dtype = self.__dict__.get("_dtype", torch.float64)
        if isinstance(value, torch.Tensor):
            return value.to(device=device, dtype=dtype) if value.is_floating_point() \
                else value.to(device)
        return torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=dtype, device=device)

    def _clear_fitted(self) -> None:
        self.__dict__["_fitted"] = {}

    # ----------------------------------------------------------------- input / output
    def _check_type(self, X) -> None:
        if scipy.sparse.issparse(X):
            raise TypeError(f"X: expected a dense array, got a sparse {type(X).__name__}: sparse "
                            "input is not supported (convert it with X.toarray())")
        if isinstance(X, (str, bytes, dict, set)) or X is None or isinstance(X, numbers.Number):
            raise TypeError(f"X: expected a torch.Tensor or a NumPy array of shape "
                            f"(n_samples, n_features), got {type(X).__name__}")

    def _target_dtype(self, dtype) -> torch.dtype:
        if self.dtype is not None:
            return self.dtype
        return dtype if dtype in _FLOAT_DTYPES else torch.float64

    def _fit_input(self, X, min_samples: int = 1) -> torch.Tensor:
        """Validate ``fit``'s ``X``: sets ``n_features_in_`` and the kind, dtype and device of
        the fitted attributes; returns ``X`` as a ``(n, d)`` tensor to compute with."""
        self._check_type(X)
        if isinstance(X, torch.Tensor):
            t = self._check_tensor(X, reset=True)
            device = t.device if self.device is None else get_device(self.device)
            numpy_out = False
            self.n_features_in_ = int(t.shape[1])
        else:
            arr = self._validate_numpy(X, reset=True)
            t = torch.from_numpy(arr)
            device = torch.device("cpu") if self.device is None else get_device(self.device)
            numpy_out = True
        dtype = self._target_dtype(t.dtype)
        if t.shape[0] < min_samples:
            raise ValueError(f"X: expected at least {min_samples} samples, got "
                             f"n_samples={t.shape[0]}")
        self.__dict__.update(_numpy_out=numpy_out, _device=device, _dtype=dtype)
        self._clear_fitted()
        return t.to(device=device, dtype=dtype)

    def _input(self, X) -> torch.Tensor:
        """Validate ``X`` for a fitted model: a tensor of the fitted dtype on the fitted device
        with ``n_features_in_`` columns."""
        self._require_fitted()
        self._check_type(X)
        if isinstance(X, torch.Tensor):
            t = self._check_tensor(X, reset=False)
        else:
            t = torch.from_numpy(self._validate_numpy(X, reset=False))
        return t.to(device=self._device, dtype=self._dtype)

    def _output(self, t: torch.Tensor, X):
        """A result for input ``X``: a tensor on ``X``'s device if ``X`` is a tensor, else
        a NumPy array. ``X=None``: the kind of the fitted attributes."""
        if X is None:
            return self._export(t)
        if isinstance(X, torch.Tensor):
            return t.to(X.device)
        return t.detach().cpu().numpy()

    def _check_tensor(self, X: torch.Tensor, reset: bool) -> torch.Tensor:
        X = X.detach()
        if X.is_complex():
            raise ValueError(f"X: expected real numbers, got dtype {X.dtype} (Complex data "
                             "not supported)")
        if X.dim() != 2:
            raise ValueError(f"X: expected a 2-D array of shape (n_samples, n_features), got "
                             f"shape {tuple(X.shape)}. Reshape your data with X.reshape(-1, 1) "
                             "(one feature) or X.reshape(1, -1) (one sample)")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X: expected at least one sample and one feature, got shape "
                             f"{tuple(X.shape)}")
        if not reset:
            self._check_n_features(X.shape[1])
        if not X.is_floating_point():
            X = X.to(torch.float64)
        if not bool(torch.isfinite(X).all()):
            raise ValueError("X: expected finite values, got NaN or inf")
        return X

    def _check_n_features(self, d: int) -> None:
        expected = self.n_features_in_
        if d != expected:
            raise ValueError(f"X: expected {expected} features (as in fit), got {d}; X has "
                             f"{d} features, but {type(self).__name__} is expecting "
                             f"{expected} features as input")

    def _validate_numpy(self, X, reset: bool) -> np.ndarray:
        """scikit-learn's ``validate_data`` (float64/float32 kept), with ``X: ...`` messages."""
        try:
            arr = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        except ValueError as err:
            msg = str(err)
            if "Expected 2D array" in msg or "Expected a 2-dimensional" in msg:
                lead = f"expected a 2-D array of shape (n_samples, n_features), got shape " \
                       f"{np.shape(X)}"
            elif "NaN" in msg or "infinity" in msg:
                lead = "expected finite values, got NaN or inf"
            elif "features, but" in msg:
                lead = f"expected {self.n_features_in_} features (as in fit)"
            else:
                lead = "expected an array of shape (n_samples, n_features)"
            raise ValueError(f"X: {lead}; {msg}") from None
        if not arr.flags.writeable:  # torch.from_numpy needs a writeable array
            arr = arr.copy()
        return arr

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _expected_failed_checks(self) -> dict[str, str]:
        """scikit-learn common checks this estimator is known to fail, with the reason
        (pass as ``parametrize_with_checks(..., expected_failed_checks=...)``)."""
        return {}
