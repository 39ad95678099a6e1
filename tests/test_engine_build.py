"""The installed llama.cpp (`make engine`) holds no AMX, AVX-512 or AVX-VNNI code, and does hold AVX2 and FMA."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

# What `make engine` leaves out (ENGINE_CMAKE_ARGS in the Makefile), and why: AMX traps with SIGILL in VMs whose
# CPU flags advertise it without enabling the tile state; AVX-512 and AVX-VNNI are missing on many x86-64 CPUs.
AMX = re.compile(r"^(ldtilecfg|sttilecfg|tile\w+|tdp\w+|tcmm\w+)$")  # the tile instructions' mnemonics
LEGACY_PREFIXES = {"26", "2e", "36", "3e", "64", "65", "67"}  # may precede an EVEX prefix (0x62 in 64-bit code)


@dataclass(frozen=True)
class Instruction:
    """One disassembled instruction: where it is, its first encoding byte (after prefixes) and its text."""

    symbol: str
    address: str
    lead: str
    text: str

    @property
    def mnemonic(self) -> str:
        words = self.text.split()
        return " ".join(words[:2]) if words[0].startswith("{") else words[0]  # "{vex} vpdpbusd"

    def instruction_set(self) -> str | None:
        """The left-out instruction set it belongs to, or None."""
        if AMX.match(self.mnemonic) or "%tmm" in self.text:  # or a tile register
            return "AMX"
        if self.lead == "62" and not self.text.startswith("(bad)"):  # EVEX: AVX-512 (zmm or not)
            return "AVX-512"
        if self.text.startswith("{vex} vpdp"):  # VEX-encoded vpdpbusd/vpdpwssd...
            return "AVX-VNNI"
        return None


def disassemble(library: Path) -> Iterator[Instruction]:
    """Every instruction objdump finds in library's code sections."""
    listing = subprocess.run(["objdump", "-d", "--wide", str(library)], capture_output=True, text=True, check=True)
    symbol = "?"
    for line in listing.stdout.splitlines():
        if header := re.match(r"^[0-9a-f]+ <(.+)>:$", line):
            symbol = header[1]
            continue
        fields = line.split("\t")
        if len(fields) < 3 or not fields[0].strip().endswith(":"):
            continue
        encoding = fields[1].split()
        lead = next((byte for byte in encoding if byte not in LEGACY_PREFIXES), "")
        yield Instruction(symbol, fields[0].strip().rstrip(":"), lead, " ".join(fields[2].split()))


def left_out_found(library: Path) -> dict[str, list[Instruction]]:
    """The instructions of library that belong to a left-out instruction set, by set."""
    found: dict[str, list[Instruction]] = {}
    for instruction in disassemble(library):
        if kind := instruction.instruction_set():
            found.setdefault(kind, []).append(instruction)
    return found


def engine_libraries() -> list[Path]:
    spec = find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        pytest.fail("llama-cpp-python is not installed --> make engine", pytrace=False)
    by_content: dict[str, Path] = {}  # the wheel holds libx.so, libx.so.0 and libx.so.0.25.3 as three copies
    for path in sorted((Path(spec.origin).parent / "lib").glob("lib*.so*")):
        by_content.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    libraries = sorted(by_content.values())
    assert any(path.name.startswith("libggml-cpu") for path in libraries), f"no libggml-cpu*.so in {libraries}"
    return libraries


def describe(library: Path, found: dict[str, list[Instruction]]) -> str:
    lines = [
        f"{library} holds instructions that `make engine` leaves out (they trap with SIGILL on CPUs or VMs "
        f"without them):"
    ]
    for kind, instructions in found.items():
        shown = ", ".join(f"{i.mnemonic} in {i.symbol} at 0x{i.address}" for i in instructions[:5])
        lines.append(f"  {kind}: {len(instructions)} instruction(s), e.g. {shown}")
    lines.append(
        "--> rebuild with `make engine` (ENGINE_CMAKE_ARGS in the Makefile: GGML_NATIVE=OFF, "
        "GGML_AVX512*=OFF, GGML_AVX_VNNI=OFF, GGML_AMX_*=OFF)"
    )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def objdump() -> str:
    path = shutil.which("objdump")
    if path is None:
        pytest.fail("objdump is not installed --> apt-get install binutils", pytrace=False)
    return path


def test_no_library_of_the_engine_holds_amx_avx512_or_avx_vnni_code(objdump: str) -> None:
    reports = [describe(library, found) for library in engine_libraries() if (found := left_out_found(library))]
    assert not reports, "\n".join(reports)


def test_the_cpu_backend_is_built_for_avx2_and_fma(objdump: str) -> None:
    """The portable build still vectorises: AVX2 integer and FMA code on ymm registers in libggml-cpu."""
    cpu = next(path for path in engine_libraries() if path.name.startswith("libggml-cpu"))
    texts = [instruction.text for instruction in disassemble(cpu)]
    fma = sum(1 for text in texts if text.startswith("vfmadd") and "%ymm" in text)
    avx2 = sum(1 for text in texts if text.startswith("vpmaddubsw") and "%ymm" in text)
    assert fma and avx2, f"{cpu}: {fma} ymm FMA and {avx2} ymm vpmaddubsw (AVX2) instructions: built without them?"
