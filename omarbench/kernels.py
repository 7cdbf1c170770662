"""Which float32 matmul kernels the offline learners run on, chosen once per process and applied per call.

PyTorch sends float32 ``bmm``/``baddbmm`` on the CPU to MKL by default. MKL picks its code path by CPU
vendor: on Intel CPUs with AVX-512 it runs its AVX-512 kernels, on other vendors' AVX-512 CPUs it was
measured running its AVX2 code at about half the speed. Setting
``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` routes the same products to oneDNN's AVX-512
``brg_matmul`` instead, which on a CPU without AMX tiles computes in float32 (the setting only *allows*
bfloat16; oneDNN uses it where it has AMX). On a CPU with AMX the same setting really computes in
bfloat16, so it is never used there.

The choice (``auto``, the default):

* ``onednn`` when the CPU has AVX-512 (F, BW, VL, DQ), no AMX, is not an Intel CPU (whose MKL already
  runs AVX-512 code: there oneDNN measured 0.89–0.97× MKL's speed over whole rounds), and a probe
  product through oneDNN agrees with the float64 product to float32 rounding;
* ``mkl`` otherwise.

The environment variable ``OMARBENCH_MATMUL`` (``auto``, ``mkl``, ``onednn``) overrides it; ``onednn``
on a CPU where the probe fails is an error. The kernels round differently, so a run's numbers depend on
the choice at the level of float rounding (which training amplifies); run records store it
(``matmul_kernel``). :func:`matmul_kernel` applies it around one call and restores the previous setting,
so nothing else in the process is affected.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from omarbench.errors import UsageError, bad_choice

KERNELS: tuple[str, ...] = ("auto", "mkl", "onednn")
ENV_VAR = "OMARBENCH_MATMUL"
_AVX512 = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
_AMX = ("amx_bf16", "amx_tile", "amx_int8", "amx_fp16")
# float32 rounding of a product with inner size 20..64: a few ulps relative to the largest output;
# a bfloat16 product (8 significant bits) is off by ~1e-3
PROBE_RTOL = 1e-5


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """``(vendor, flags)`` of the first CPU in ``/proc/cpuinfo`` (``("", {})`` where there is none)."""
    vendor, flags = "", frozenset()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return vendor, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if vendor and flags:
            break
    return vendor, flags


def _onednn_setting(kernel: str) -> str:
    return "bf16" if kernel == "onednn" else "none"


@functools.lru_cache(maxsize=1)
def onednn_probe_error() -> float:
    """Largest error, relative to the largest output, of a batched float32 product through oneDNN with
    bfloat16 allowed, against float64 (shapes of a critic layer)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 512, 20, generator=g)
    w = torch.randn(6, 20, 64, generator=g)
    b = torch.randn(6, 1, 64, generator=g)
    with matmul_kernel("onednn"):
        out = torch.baddbmm(b, a, w)
    ref = torch.baddbmm(b.double(), a.double(), w.double())
    return float((out.double() - ref).abs().max() / ref.abs().max())


def onednn_exact() -> bool:
    """oneDNN's float32 products are float32 here (AVX-512, no AMX, the probe agrees)."""
    _, flags = cpu_info()
    if not torch.backends.mkldnn.is_available() or not all(f in flags for f in _AVX512):
        return False
    if any(f in flags for f in _AMX):
        return False
    return onednn_probe_error() < PROBE_RTOL


@functools.cache
def resolve_kernel(choice: str | None = None) -> str:
    """``auto``/``mkl``/``onednn`` (default: ``$OMARBENCH_MATMUL`` or ``auto``) → ``mkl`` or ``onednn``."""
    if choice is None:
        choice = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if choice not in KERNELS:
        raise bad_choice(ENV_VAR, choice, KERNELS)
    if choice == "mkl":
        return "mkl"
    if choice == "onednn":
        if not onednn_exact():
            raise UsageError(f"{ENV_VAR}=onednn: oneDNN does not compute float32 products in float32 on this "
                             "CPU (AMX, no AVX-512, or the probe failed); use mkl or auto")
        return "onednn"
    vendor, _ = cpu_info()
    return "onednn" if vendor != "GenuineIntel" and onednn_exact() else "mkl"


@contextmanager
def matmul_kernel(kernel: str):
    """Run the body with float32 matmuls on ``kernel`` (``mkl`` or ``onednn``); restore the setting after."""
    if kernel not in ("mkl", "onednn"):
        raise bad_choice("matmul kernel", kernel, ("mkl", "onednn"))
    knob = torch.backends.mkldnn.matmul
    before = knob.fp32_precision
    want = _onednn_setting(kernel)
    if before == want:
        yield
        return
    knob.fp32_precision = want
    try:
        yield
    finally:
        knob.fp32_precision = before
