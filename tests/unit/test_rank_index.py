"""Distributed explain helpers: sharding in whole batches, and the merge of the per-rank indexes."""

from __future__ import annotations

import json
from pathlib import Path

from otx_xai.explain.distributed import BatchShardSampler
from otx_xai.explain.dump import INDEX_LINES
from otx_xai.explain.rank_index import merge_rank_indexes, rank_index_files, rank_index_name


def test_batch_shards_cover_every_image_once_in_one_process_batches() -> None:
    for size, batch, world in [(7, 2, 2), (7, 8, 2), (10, 3, 3), (1, 4, 2), (0, 2, 2)]:
        shards = [list(BatchShardSampler(size, batch, rank, world)) for rank in range(world)]
        assert sorted(i for shard in shards for i in shard) == list(range(size))
        for shard in shards:  # each rank's batches are batches of the one-process run
            for start in range(0, len(shard), batch):
                chunk = shard[start:start + batch]
                assert chunk[0] % batch == 0 and chunk == list(range(chunk[0], chunk[0] + len(chunk)))


def _write(path: Path, ids: list[str], tag: str = "") -> None:
    path.write_text("".join(json.dumps({"image_id": i, "tag": tag}) + "\n" for i in ids))


def test_merge_orders_dedupes_and_removes_rank_files(tmp_path: Path) -> None:
    _write(tmp_path / INDEX_LINES, ["a"], "resumed")
    _write(tmp_path / rank_index_name(0), ["b", "d", "a"], "rank0")
    _write(tmp_path / rank_index_name(10), ["e"], "rank10")
    _write(tmp_path / rank_index_name(1), ["c", "b"], "rank1")  # "b" twice: a duplicate across ranks
    assert [p.name for p in rank_index_files(tmp_path)] == [rank_index_name(r) for r in (0, 1, 10)]
    assert merge_rank_indexes(tmp_path, order=["a", "b", "c", "d", "e"]) == 6
    entries = [json.loads(line) for line in (tmp_path / INDEX_LINES).read_text().splitlines()]
    assert [e["image_id"] for e in entries] == ["a", "b", "c", "d", "e"]
    assert not rank_index_files(tmp_path) and not list(tmp_path.glob(".*.tmp"))
    assert merge_rank_indexes(tmp_path) == 0  # nothing left to merge: the index is untouched
