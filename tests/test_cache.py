"""The result store: atomic writes, corrupt entries detected, concurrent writers safe."""

import json
import multiprocessing

from llmexec.cache import Corrupt, ResultCache

KEY = "ab" + "0" * 62


def test_round_trip_and_no_temp_files_left(tmp_path):
    cache = ResultCache(tmp_path)
    assert cache.get(KEY) is None
    cache.put(KEY, {"kind": "code", "output": "hi\n"})
    assert cache.get(KEY)["output"] == "hi\n"
    assert [p.name for p in cache.path(KEY).parent.iterdir()] == [f"{KEY}.json"]


def test_corrupt_truncated_and_foreign_entries_are_reported_not_raised(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put(KEY, {"kind": "code", "output": "x"})
    path = cache.path(KEY)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    assert isinstance(cache.get(KEY), Corrupt) and "not valid JSON" in cache.get(KEY).reason
    path.write_text(json.dumps({"schema": 999, "key": KEY}))
    assert isinstance(cache.get(KEY), Corrupt)
    path.write_text(json.dumps({"schema": 1, "key": "another"}))
    assert isinstance(cache.get(KEY), Corrupt)


def _writer(root: str, n: int) -> None:
    cache = ResultCache(__import__("pathlib").Path(root))
    for i in range(200):
        cache.put(KEY, {"kind": "code", "output": f"writer {n} round {i} " + "x" * 5000})


def test_two_processes_writing_the_same_entry_never_leave_half_a_file(tmp_path):
    procs = [multiprocessing.Process(target=_writer, args=(str(tmp_path), n)) for n in range(2)]
    for p in procs:
        p.start()
    cache = ResultCache(tmp_path)
    reads = 0
    while any(p.is_alive() for p in procs):
        value = cache.get(KEY)
        assert not isinstance(value, Corrupt)
        reads += value is not None
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert cache.get(KEY)["output"].startswith("writer ")
    assert not [p for p in cache.path(KEY).parent.iterdir() if p.suffix == ".tmp"]
