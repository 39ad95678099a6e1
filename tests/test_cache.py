"""The result store: atomic writes, corrupt entries detected, concurrent writers safe."""

import json
import multiprocessing
import time

from llmexec.resolve.cache import Corrupt, ResultCache

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


def _writer(root: str, n: int, stop) -> None:
    cache = ResultCache(__import__("pathlib").Path(root))
    i = 0
    while not stop.is_set() and i < 100_000:  # until the reader has seen enough (the cap is a safety net)
        cache.put(KEY, {"kind": "code", "output": f"writer {n} round {i} " + "x" * 5000})
        i += 1


def test_two_processes_writing_the_same_entry_never_leave_half_a_file(tmp_path):
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_writer, args=(str(tmp_path), n, stop)) for n in range(2)]
    for p in procs:
        p.start()
    cache = ResultCache(tmp_path)
    seen: dict[str, set[str]] = {"writer 0": set(), "writer 1": set()}
    deadline = time.monotonic() + 60
    try:
        # read while both keep replacing the entry, until each writer's entries were read many times over
        while min(len(rounds) for rounds in seen.values()) < 50 and time.monotonic() < deadline:
            value = cache.get(KEY)
            assert not isinstance(value, Corrupt), value
            if value is not None:
                writer, _, round_ = value["output"].partition(" round ")
                assert round_.endswith(" " + "x" * 5000)  # the whole text, not a prefix of it
                seen[writer].add(round_.split()[0])
    finally:
        stop.set()
        for p in procs:
            p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    assert {writer: len(rounds) >= 50 for writer, rounds in seen.items()} == {"writer 0": True, "writer 1": True}
    assert cache.get(KEY)["output"].startswith("writer ")
    assert not [p for p in cache.path(KEY).parent.iterdir() if p.suffix == ".tmp"]
