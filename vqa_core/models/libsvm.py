"""Support-vector regression models in LIBSVM's text format, evaluated with numpy.

VMAF's JSON models embed a trained LIBSVM model as text: a header of
``key value`` lines (``svm_type``, ``kernel_type``, ``gamma``, ``rho`` ...),
the line ``SV``, then one support vector per line: its coefficient followed
by sparse ``index:value`` pairs (indices start at 1; a missing index means 0).

A regression model predicts ``sum_i coef_i * K(x, sv_i) - rho``.  The
support vectors are stored densely (zeros where the text leaves an index
out), which gives the same squared distances as LIBSVM's sparse walk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np

KERNELS = ("linear", "polynomial", "rbf", "sigmoid")
REGRESSION_TYPES = ("nu_svr", "epsilon_svr")
_CHUNK = 1024


@dataclass
class SVRModel:
    """A LIBSVM regression model: ``predict(x)`` for rows of features."""

    svm_type: str
    kernel_type: str
    gamma: float
    coef0: float
    degree: int
    rho: float
    coef: np.ndarray  # (n_sv,)
    sv: np.ndarray    # (n_sv, dim), dense

    @property
    def dim(self) -> int:
        return self.sv.shape[1]

    @property
    def n_sv(self) -> int:
        return self.sv.shape[0]

    def predict(self, x) -> np.ndarray:
        """Decision values for ``x`` of shape (n_features,) or (n_rows, n_features).

        Feature ``j`` (0-based) is LIBSVM index ``j + 1``.  Rows shorter than
        the support vectors are padded with zeros (LIBSVM's missing index).
        """
        x = np.asarray(x, dtype=np.float64)
        one = x.ndim == 1
        x = np.atleast_2d(x)
        n, d = x.shape
        if d > self.dim:
            sv = np.zeros((self.n_sv, d))
            sv[:, :self.dim] = self.sv
        else:
            sv = self.sv
            if d < self.dim:
                x = np.concatenate([x, np.zeros((n, self.dim - d))], axis=1)
        out = np.empty(n)
        for a in range(0, n, _CHUNK):  # bounded scratch for long batches
            k = self._kernel(x[a:a + _CHUNK], sv)  # (rows, n_sv)
            # LIBSVM's sum, term after term (np.cumsum is sequential): no
            # BLAS call, whose threads would then spin on the cores the
            # kernels use
            out[a:a + _CHUNK] = np.cumsum(k * self.coef, axis=1)[:, -1] - self.rho
        return out[0] if one else out

    def _kernel(self, x: np.ndarray, sv: np.ndarray) -> np.ndarray:
        if self.kernel_type == "rbf":
            diff = x[:, None, :] - sv[None, :, :]
            return np.exp(-self.gamma * np.einsum("nsd,nsd->ns", diff, diff))
        dot = np.einsum("nd,sd->ns", x, sv)  # (not BLAS: see predict)
        if self.kernel_type == "linear":
            return dot
        if self.kernel_type == "polynomial":
            return (self.gamma * dot + self.coef0) ** self.degree
        return np.tanh(self.gamma * dot + self.coef0)  # sigmoid


def parse_libsvm(text: str) -> SVRModel:
    """Parse LIBSVM model text (as embedded in VMAF JSON models)."""
    if not isinstance(text, str):
        raise ValueError("libsvm model must be a string")
    lines = text.splitlines()
    header: Dict[str, List[str]] = {}
    i = 0
    while i < len(lines):
        parts = lines[i].split()
        i += 1
        if not parts:
            continue
        if parts[0] == "SV":
            break
        header[parts[0]] = parts[1:]
    else:
        raise ValueError("libsvm model text has no 'SV' section")

    def get(key, conv, default=None):
        if key not in header:
            if default is None:
                raise ValueError(f"libsvm model text lacks '{key}'")
            return default
        vals = header[key]
        if not vals:
            raise ValueError(f"libsvm model text: '{key}' has no value")
        try:
            return conv(vals[0])
        except ValueError:
            raise ValueError(f"libsvm model text: bad value for '{key}': {vals[0]!r}") from None

    svm_type = get("svm_type", str)
    if svm_type not in REGRESSION_TYPES:
        raise ValueError(f"unsupported libsvm svm_type {svm_type!r}; "
                         f"supported: {', '.join(REGRESSION_TYPES)}")
    kernel = get("kernel_type", str)
    if kernel not in KERNELS:
        raise ValueError(f"unsupported libsvm kernel_type {kernel!r}; "
                         f"supported: {', '.join(KERNELS)}")
    gamma = get("gamma", float, 0.0)
    if kernel != "linear" and "gamma" not in header:
        raise ValueError("libsvm model text lacks 'gamma'")
    coef0 = get("coef0", float, 0.0)
    degree = get("degree", int, 3)
    rho = get("rho", float)
    total_sv = get("total_sv", int, -1)

    coefs: List[float] = []
    rows: List[Dict[int, float]] = []
    dim = 0
    for ln, line in enumerate(lines[i:], start=i + 1):
        parts = line.split()
        if not parts:
            continue
        try:
            coefs.append(float(parts[0]))
            row = {}
            for p in parts[1:]:
                k, v = p.split(":", 1)
                idx = int(k)
                if idx < 1:
                    raise ValueError
                row[idx] = float(v)
        except ValueError:
            raise ValueError(f"libsvm model text: bad support vector on line {ln}: "
                             f"{line[:60]!r}") from None
        rows.append(row)
        if row:
            dim = max(dim, max(row))
    if not rows:
        raise ValueError("libsvm model text has no support vectors")
    if total_sv >= 0 and total_sv != len(rows):
        raise ValueError(f"libsvm model text: total_sv is {total_sv} but "
                         f"{len(rows)} support vectors follow")
    sv = np.zeros((len(rows), dim))
    for r, row in enumerate(rows):
        for idx, v in row.items():
            sv[r, idx - 1] = v
    return SVRModel(svm_type, kernel, gamma, coef0, degree, rho,
                    np.array(coefs, dtype=np.float64), sv)
