"""Checkpoints: a "restarted process" resumes every stream where its loop stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import ClientSession

import aiostreams
from aiostreams import CheckpointStore, FileCheckpoints, MemoryCheckpoints, track


async def test_a_restarted_merge_resumes_every_stream(
    eventstreams_server: str, tmp_path: Path
) -> None:
    path = tmp_path / "ids.json"
    names = ["a", "b", "c"]
    url = f"{eventstreams_server}/load/resumable?n=20"

    def sources(
        store: CheckpointStore, session: ClientSession
    ) -> dict[str, aiostreams.EventSource[aiostreams.ServerSentEvent]]:
        return {
            name: aiostreams.connect(
                url, session=session, last_event_id=store.load(name), reconnect_on_eof=False
            )
            for name in names
        }

    first: dict[str, list[str]] = {name: [] for name in names}
    broke_on = ""
    async with aiostreams.create_session() as session:
        with FileCheckpoints(path) as store:  # the first "process": stops after 30 events
            async with aiostreams.merge(**sources(store, session)) as merged:
                async for name, event in track(merged, store):
                    first[str(name)].append(event.id)
                    if sum(map(len, first.values())) == 30:
                        broke_on = str(name)
                        break
    saved = json.loads(path.read_text())
    # Everything the loop finished with is saved; the event it broke on is not.
    for name in names:
        done = first[name][:-1] if name == broke_on else first[name]
        assert saved.get(name, "") == (done[-1] if done else ""), name

    second: dict[str, list[str]] = {name: [] for name in names}
    async with aiostreams.create_session() as session:
        with FileCheckpoints(path) as store:  # the restarted "process"
            async with aiostreams.merge(**sources(store, session)) as merged:
                async for name, event in track(merged, store):
                    second[str(name)].append(event.id)
    for name in names:
        repeated = 1 if name == broke_on else 0  # only the event the loop broke on
        assert first[name] + second[name][repeated:] == [str(i) for i in range(1, 21)], name
        if repeated:
            assert second[name][0] == first[name][-1]
    assert json.loads(path.read_text()) == dict.fromkeys(names, "20")


async def test_track_one_stream(eventstreams_server: str) -> None:
    store = MemoryCheckpoints()
    url = f"{eventstreams_server}/load/resumable?n=5"
    async with aiostreams.connect(url, reconnect_on_eof=False) as events:
        ids = [event.id async for event in track(events, store, key="only")]
    assert ids == ["1", "2", "3", "4", "5"]
    assert store.load("only") == "5"
    assert store.load("other") == ""


def test_file_checkpoints_write_atomically_and_refuse_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    store = FileCheckpoints(path, flush_interval=3600)
    store.save("s", "7")
    assert not path.exists()  # batched until the interval or flush()
    store.flush()
    assert json.loads(path.read_text()) == {"s": "7"}
    assert FileCheckpoints(path).load("s") == "7"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object of strings"):
        FileCheckpoints(path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read checkpoints"):
        FileCheckpoints(path)
    with pytest.raises(ValueError, match="flush_interval"):
        FileCheckpoints(tmp_path / "x.json", flush_interval=-1)
    assert isinstance(store, CheckpointStore) and isinstance(MemoryCheckpoints(), CheckpointStore)


async def test_track_refuses_single_events_without_a_key(eventstreams_server: str) -> None:
    url = f"{eventstreams_server}/load/resumable?n=2"
    async with aiostreams.connect(url, reconnect_on_eof=False) as events:
        with pytest.raises(TypeError, match="pass key="):
            async for _ in track(events, MemoryCheckpoints()):
                pass
