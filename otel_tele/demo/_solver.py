"""A real small solver for the demo: ISTA on 1-D deconvolution with Haar-wavelet sparsity.

Problem: a piecewise-constant signal ``x`` is blurred by a Gaussian kernel and noise is added. With
``x = W^T c`` (orthonormal Haar synthesis) we minimise
``E(c) = 1/2 ||A W^T c - y||^2 + lambda ||c||_1`` by proximal gradient descent (step
``alpha = 1/L``), which decreases ``E`` monotonically. Every iteration is recorded through
:mod:`otel_tele.instrumentation.fda`; the summary shows ``otel-tele runs show`` of the production run,
energy descending.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import numpy as np

import otel_tele
from otel_tele.instrumentation import fda

from ._commands import command

FLOW = "deconv_wavelet_v1"
UNITS = {"phi_residual": "relative L2 (||A x - y|| / ||y||)", "invariant_drift_max": "relative"}
METHOD = {
    "phi_residual": "forward operator A = circular Gaussian blur (sigma 2), L2 norm",
    "invariant_drift_max": "max |mean(x_k) - mean(x_{k-1})| / |mean(y)| (mass conservation)",
}


def haar_matrix(n: int) -> np.ndarray:
    """Orthonormal Haar analysis matrix W (n a power of two): c = W x."""
    if n == 1:
        return np.ones((1, 1))
    h = haar_matrix(n // 2)
    top = np.kron(h, [1.0, 1.0])
    bottom = np.kron(np.eye(n // 2), [1.0, -1.0])
    matrix: np.ndarray = np.vstack([top, bottom]) / np.sqrt(2.0)
    return matrix


def problem(n: int = 256, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x_true = np.zeros(n)
    for _ in range(6):
        start, width = rng.integers(0, n - 20), rng.integers(5, 40)
        x_true[start : start + width] += rng.normal(0, 1.5)
    k = np.arange(n)
    kernel = np.exp(-0.5 * (np.minimum(k, n - k) / 2.0) ** 2)
    kernel /= kernel.sum()
    a = np.array([np.roll(kernel, i) for i in range(n)]).T  # circular convolution
    y = a @ x_true + rng.normal(0, 0.01, n)
    w = haar_matrix(n)
    b = a @ w.T  # operator on wavelet coefficients
    gram = b.T @ b
    eig = np.linalg.eigvalsh(gram)
    diag = np.abs(np.diag(gram))
    eta_dd = float(np.min((diag - (np.abs(gram).sum(axis=1) - diag)) / np.maximum(diag, 1e-30)))
    return {
        "y": y,
        "w": w,
        "b": b,
        "lipschitz": float(eig[-1]),
        "gamma": float((eig[-1] - eig[-2]) / eig[-1]),
        "eta_dd": eta_dd,
        "a": a,
    }


def solve(run: fda.Run, prob: dict[str, Any], *, lam: float, iterations: int) -> float:
    """ISTA; records every iteration; returns the final energy."""
    y, w, b, a = prob["y"], prob["w"], prob["b"], prob["a"]
    alpha = 1.0 / prob["lipschitz"]
    c = np.zeros(b.shape[1])
    mean_prev = 0.0
    y_norm, y_mean = float(np.linalg.norm(y)), abs(float(y.mean())) or 1.0
    e_prev = float("inf")
    levels = int(np.log2(len(c)))
    active_prev = -1
    for i in range(iterations):
        residual = b @ c - y
        grad = b.T @ residual
        c = np.sign(c - alpha * grad) * np.maximum(np.abs(c - alpha * grad) - alpha * lam, 0.0)
        residual = b @ c - y
        energy = 0.5 * float(residual @ residual) + lam * float(np.abs(c).sum())
        x = w.T @ c
        nonzero = np.flatnonzero(c)
        active = int(np.floor(np.log2(nonzero.max()))) if nonzero.size and nonzero.max() > 0 else 0
        if active > active_prev:
            run.event("SCALE_ACTIVATED", {"level": active, "iter": i})
            active_prev = active
        drop = (e_prev - energy) / max(abs(energy), 1e-30)
        run.iteration(
            iter=i,
            phase="RED" if drop > 1e-2 else "AMBER" if drop > 1e-4 else "GREEN",
            E=energy,
            grad_norm=float(np.linalg.norm(grad)),
            eta_dd=prob["eta_dd"],
            gamma=prob["gamma"],
            alpha=alpha,
            phi_residual=float(np.linalg.norm(a @ x - y)) / y_norm,
            invariant_drift_max=abs(float(x.mean()) - mean_prev) / y_mean,
            lambda_=lam,
            sparsity_wx=1.0 - nonzero.size / len(c),
            level_active_max=min(active, levels),
            sparsity_mode="l1",
            flow_family="proximal",
            lens_name="haar",
        )
        mean_prev, e_prev = float(x.mean()), energy
    return e_prev


def run(telemetry: otel_tele.Pipeline, data_dir: pathlib.Path, *, seconds: float) -> list[str]:
    """Production, dev and tuner runs of the solver for about ``seconds``; summary lines to print."""
    from ..runs import Runs

    prob = problem()
    deadline = time.monotonic() + seconds
    common: dict[str, Any] = {"units": UNITS, "method": METHOD, "telemetry": telemetry}
    with fda.run(FLOW, mode="production", **common) as production:
        production.event("LENS_SELECTED", {"lens": "haar", "levels": int(np.log2(len(prob["y"])))})
        final = solve(production, prob, lam=0.01, iterations=300)
        production.event("CERT_PASS" if final < 1.0 else "CERT_FAIL", {"E_final": final})
    trial = 0
    while time.monotonic() < deadline or trial < 2:
        trial += 1
        lam = 0.002 * trial
        with fda.run(FLOW, mode="tuner", trial_id=f"lambda_sweep_{trial:03d}", **common) as tuning:
            solve(tuning, prob, lam=lam, iterations=150)
    with fda.run(FLOW, mode="dev", **common) as dev:
        solve(dev, prob, lam=0.01, iterations=50)
    root = Runs(_root(telemetry, data_dir))
    shown = root.show(production.run_id, points=8)
    lines = [
        f"FDA solver: production run {production.run_id}, {trial} tuner trials, 1 dev run under {root.root}",
        "  iter  phase         E     grad_norm  phi_residual",
    ]
    lines += [
        f"  {row['iter']:>4}  {row['phase']:<5}  {row['E']:>10.5f}  {row['grad_norm']:>10.3e}  "
        f"{row['phi_residual']:>10.4f}"
        for row in shown["trajectory"]
    ]
    lines.append(command("runs", "show", production.run_id, "--root", root.root))
    return lines


def _root(telemetry: otel_tele.Pipeline, data_dir: pathlib.Path) -> pathlib.Path:
    sink = telemetry.sinks.get("capsule")
    return pathlib.Path(sink.root) if sink is not None else data_dir / "telematry_cfs"  # type: ignore[attr-defined]
