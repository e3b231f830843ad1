"""The wire format between the trusted grader and the sandbox worker: plain data as JSON.

Everything that crosses the sandbox boundary (arguments, results, recorded
expected values in ``public_expected.json``) is encoded by :func:`encode`:
JSON-compatible structures, numpy arrays as base64 with a whitelisted numeric
dtype, exact types only (a ``float`` subclass that overrides ``__eq__`` is
rejected). :func:`decode` builds only plain Python/numpy objects (torch tensors
on request), validating sizes, depth and dtypes as it goes. No pickle.

Both sides import this module, so it must stay light: the standard library
only, with numpy and torch imported lazily (the worker has imported them before
it hardens itself).
"""

from __future__ import annotations

import base64
import json
import sys

ALLOWED_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
    "float16 float32 float64 complex64 complex128".split()
)
MAX_DEPTH = 32
MAX_ITEMS = 1_000_000


class PlainDataError(TypeError):
    """A value that is not plain data (numbers, strings, arrays, containers)."""


def encode(obj, _depth: int = 0):
    """Encode plain data as a JSON-compatible structure; reject everything else.

    Accepted: ``None``, exact ``bool``/``int``/``float``/``str``, numpy arrays
    and scalars of a numeric dtype, torch tensors (converted to numpy),
    ``list``/``tuple`` and ``dict`` with ``str`` keys. Subclasses (which could
    override ``__eq__``) are rejected with :class:`PlainDataError`.
    """
    if _depth > MAX_DEPTH:
        raise PlainDataError(f"nesting deeper than {MAX_DEPTH} levels")
    kind = type(obj)
    if obj is None or kind is bool or kind is str:
        return obj
    if kind is int:
        if abs(obj) >= 2**63:
            return {"__bigint__": str(obj)}
        return obj
    if kind is float:
        if obj != obj or obj in (float("inf"), float("-inf")):
            return {"__float__": repr(obj)}
        return obj
    if kind is list:
        return [encode(v, _depth + 1) for v in obj]
    if kind is tuple:
        return {"__tuple__": [encode(v, _depth + 1) for v in obj]}
    if kind is dict:
        items = []
        for key, value in obj.items():
            if type(key) is not str:
                raise PlainDataError(f"dict keys must be str, got {type(key).__name__}")
            items.append([key, encode(value, _depth + 1)])
        return {"__dict__": items}
    import numpy as np

    if kind is np.ndarray or isinstance(obj, np.generic) and kind.__module__ == "numpy":
        arr = np.asarray(obj)
        if arr.dtype.name not in ALLOWED_DTYPES:
            raise PlainDataError(f"array dtype {arr.dtype} is not a numeric dtype")
        # ascontiguousarray promotes 0-d to 1-d; keep the original shape
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).reshape(arr.shape)
        return {
            "__ndarray__": base64.b64encode(arr.tobytes()).decode("ascii"),
            "dtype": arr.dtype.name,
            "shape": list(arr.shape),
        }
    torch = sys.modules.get("torch")
    if torch is not None and kind in (torch.Tensor, torch.nn.Parameter):
        tensor = torch.Tensor.detach(obj).cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        tensor = tensor.resolve_conj().resolve_neg()
        return encode(np.array(tensor.numpy(), copy=True), _depth)
    raise PlainDataError(
        f"a value of type {kind.__module__}.{kind.__qualname__} is not plain data "
        "(expected a tensor/array, a number, a bool, a str, None, or a list/tuple/dict of those)"
    )


def decode(data, *, to_torch: bool = False, _depth: int = 0, _budget: list | None = None):
    """Inverse of :func:`encode`; builds only plain objects, validating as it goes.

    With ``to_torch=True`` arrays become torch tensors of the same dtype (this
    is how arguments reach student code). Raises :class:`PlainDataError` on
    anything malformed.
    """
    if _budget is None:
        _budget = [MAX_ITEMS]
    _budget[0] -= 1
    if _budget[0] < 0 or _depth > MAX_DEPTH + 1:
        raise PlainDataError("message too large or too deeply nested")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(v, to_torch=to_torch, _depth=_depth + 1, _budget=_budget) for v in data]
    if kind is not dict or len(data) not in (1, 3):
        raise PlainDataError(f"unexpected {kind.__name__} in message")
    if "__tuple__" in data and len(data) == 1:
        items = data["__tuple__"]
        if type(items) is not list:
            raise PlainDataError("malformed tuple")
        return tuple(
            decode(v, to_torch=to_torch, _depth=_depth + 1, _budget=_budget) for v in items
        )
    if "__dict__" in data and len(data) == 1:
        out = {}
        for pair in data["__dict__"]:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise PlainDataError("malformed dict")
            out[pair[0]] = decode(pair[1], to_torch=to_torch, _depth=_depth + 1, _budget=_budget)
        return out
    if "__float__" in data and len(data) == 1:
        if data["__float__"] not in ("nan", "inf", "-inf"):
            raise PlainDataError("malformed float")
        return float(data["__float__"])
    if "__bigint__" in data and len(data) == 1:
        text = data["__bigint__"]
        if type(text) is not str or len(text) > 4000:
            raise PlainDataError("malformed int")
        return int(text)
    if set(data) == {"__ndarray__", "dtype", "shape"}:
        import numpy as np

        dtype_name, shape, payload = data["dtype"], data["shape"], data["__ndarray__"]
        if type(dtype_name) is not str or dtype_name not in ALLOWED_DTYPES:
            raise PlainDataError(f"array dtype {dtype_name!r} is not allowed")
        if type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            raise PlainDataError("malformed array shape")
        if type(payload) is not str:
            raise PlainDataError("malformed array payload")
        dtype = np.dtype(dtype_name).newbyteorder("<")
        raw = base64.b64decode(payload.encode("ascii"), validate=True)
        count = 1
        for s in shape:
            count *= s
        if count * dtype.itemsize != len(raw):
            raise PlainDataError("array payload does not match its shape")
        arr = np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        if to_torch:
            import torch

            return torch.from_numpy(arr)
        return arr
    raise PlainDataError("unexpected object in message")


def dumps(obj) -> str:
    """Encode ``obj`` as one line of JSON (no NaN literals, sorted keys)."""
    return json.dumps(encode(obj), allow_nan=False, separators=(",", ":"), sort_keys=True)


def loads(text: str, *, to_torch: bool = False):
    """Decode one line produced by :func:`dumps`."""
    return decode(json.loads(text), to_torch=to_torch)
