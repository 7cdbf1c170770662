"""The machine a run ran on, as run records name it.

The float rounding of a training run depends on the CPU: its instruction set decides which code MKL or
oneDNN runs for the matrix products and which vector width PyTorch's own kernels (reductions,
elementwise maths) use, so two machines give different numbers from the same code and data. Records carry
the CPU's model name, family and model, and PyTorch's CPU capability (``AVX2``, ``AVX512``; the
environment variable ``ATEN_CPU_CAPABILITY`` lowers it), so that a study made on several machines says
which runs ran where and with which arithmetic."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_label() -> str:
    """The CPU's model name, family and model number, as /proc/cpuinfo gives them ("" where it is not
    readable), e.g. ``AMD EPYC (family 25, model 17)``."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if not fields:
        return ""
    family, model = fields.get("cpu family", "?"), fields.get("model", "?")
    return f"{fields.get('model name', '')} (family {family}, model {model})".strip()


def cpu_capability() -> str:
    """The vector instruction set PyTorch's CPU kernels run (``torch.backends.cpu.get_cpu_capability()``:
    ``AVX2``, ``AVX512``, ...; ``""`` where torch cannot say)."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError, RuntimeError):
        return ""
