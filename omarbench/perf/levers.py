"""The paper algorithms' update rounds on each matmul kernel and sampled-action precision, in one run.

For MA-ICQ, MA-TD3+BC, MA-CQL and OMAR at a task's learner sizes (5 seeds batched, the ``paper`` preset's
batch of 1,024, one thread), every combination of the float32 kernel (``mkl``, and ``onednn`` where
:func:`omarbench.kernels.onednn_exact` allows it) and, for MA-CQL and OMAR, the precision of
the sampled-action and search passes (``sample_precision`` ``fp32`` or ``bf16``) gets its own
learners; one update round of each is timed in turn, round after round, so that load from other
processes hits them alike. Printed: the median CPU seconds per round and the ratio against MKL in
float32. Also printed: the CPU's vendor and whether it has bfloat16 instructions (``avx512_bf16``;
without them bfloat16 products are emulated and slower).
"""

from __future__ import annotations

import dataclasses

from omarbench.kernels import cpu_info, onednn_exact, resolve_kernel
from omarbench.offline.algos import get_algorithm
from omarbench.offline.algos.core import Learners
from omarbench.offline.presets import make_config
from omarbench.tasks.spec import parse_task_id
from omarbench.vocab import PAPER_ALGOS, PAPER_TASKS

SEEDS = 5
SAMPLED = ("MA-CQL", "OMAR")  # the algorithms with sampled-action / search passes


def variants() -> list[tuple[str, str, str]]:
    """``(algorithm, kernel, sample precision)`` of every combination measured here."""
    kernels = ("mkl", "onednn") if onednn_exact() else ("mkl",)
    return [(a, k, p) for a in PAPER_ALGOS for p in (("fp32", "bf16") if a in SAMPLED else ("fp32",))
            for k in kernels]


def round_times(task_id: str, reps: int, level: str = "medium-replay") -> dict[tuple[str, str, str], float]:
    """Median CPU seconds per update round of each variant on ``task_id``'s sizes, variants interleaved."""
    from omarbench.perf.study import _Data, interleaved_rounds

    task = parse_task_id(task_id)
    data = _Data(task)
    runs = {}
    for algo, kernel, prec in variants():
        cfg = make_config(algo, task, level, "paper")
        if algo in SAMPLED:
            cfg = dataclasses.replace(cfg, sample_precision=prec)
        learners = Learners(get_algorithm(algo)(cfg), list(range(SEEDS)), data)
        learners.matmul_kernel = kernel
        runs[(algo, kernel, prec)] = learners
    return interleaved_rounds(runs, reps)


def run(quick: bool = False) -> None:
    reps = 3 if quick else 9
    vendor, flags = cpu_info()
    print(f"CPU {vendor or 'unknown'}, avx512_bf16 {'yes' if 'avx512_bf16' in flags else 'no'}, "
          f"amx {'yes' if any(f.startswith('amx') for f in flags) else 'no'}; default kernel {resolve_kernel()}")
    for task_id in ("spread",) if quick else PAPER_TASKS:
        times = round_times(task_id, reps)
        print(f"{task_id} (5 seeds batched, batch 1,024, one thread; CPU s per round, median of {reps}):")
        for algo in PAPER_ALGOS:
            base = times[(algo, "mkl", "fp32")]
            cells = [f"{k}/{p} {s * 1e3:6.0f} ms ({base / s:4.2f}x)"
                     for (a, k, p), s in times.items() if a == algo]
            print(f"  {algo:10s} " + "  ".join(cells), flush=True)
