"""Worker side: what an output's numerics can depend on besides library versions (CPU, vector extensions, threads)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

# The CPU features that select different kernels in torch's CPU backend (x86 and ARM).
VECTOR_EXTENSIONS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "sve",
    "sve2",
)


def describe(threads: int) -> dict[str, Any]:
    """Recorded with every lockfile entry, so a mismatch on another machine can name what differs."""
    import torch

    flags = _cpu_flags()
    return {
        "arch": platform.machine(),
        "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "vector_extensions": " ".join(f for f in VECTOR_EXTENSIONS if f in flags),
        "torch_threads": threads,
    }


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()
