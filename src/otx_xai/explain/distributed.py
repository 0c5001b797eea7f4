"""Explain with several processes through Lightning's own strategies (DDP): what the ranks share.

Every rank runs the whole command (Lightning's subprocess launcher re-runs it) and so builds its own
Engine and sink; before the process group exists a process cannot tell its global rank, so the run
folder is made inside the Trainer run: in ``setup``, global rank 0 creates it (or reopens it, resuming)
and broadcasts it, with the images a resumed run already holds, to every rank. The images are shared
out in whole batches (``BatchShardSampler``), so each image is computed in the same batch as in a
one-process run. Each rank appends to its own ``explain_index.rank<N>.jsonl``; at ``teardown`` every
rank closes it and waits at a barrier, after which rank 0 merges them (``ExplainSink.finish``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from otx_xai.explain.rank_index import in_order
from otx_xai.explain.sink import ExplainSink

SPAWN_MESSAGE = ("distributed explain needs --trainer.strategy ddp (Lightning's subprocess launcher): "
                 "with a spawn or fork launcher the ranks cannot hand the run folder back")


def uses_popen(trainer: lightning.Trainer) -> bool:
    """False for strategies whose processes are started by spawn/fork (``ddp_spawn``, ``ddp_notebook``)."""
    return getattr(trainer.strategy, "_start_method", "popen") == "popen"


class BatchShardSampler(Sampler[int]):
    """Rank r's share of ``size`` images: the batches r, r+W, ... of the one-process batching.

    Every image is in exactly one rank's share (no padding, no repeat) and in the same batch as in a
    one-process run, so the numerics, and the maps, are the same to the byte.
    """

    def __init__(self, size: int, batch_size: int, rank: int, world_size: int) -> None:
        batches = range(rank, math.ceil(size / batch_size), world_size)
        self.indices = [i for b in batches for i in range(b * batch_size, min(size, (b + 1) * batch_size))]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class ShardedPredictData(lightning.LightningDataModule):
    """The engine's data module for predict, its loader cut to this rank's batches."""

    def __init__(self, datamodule: Any) -> None:
        super().__init__()
        self.datamodule = datamodule

    def predict_dataloader(self) -> DataLoader:
        loader = self.datamodule.predict_dataloader()
        sampler = BatchShardSampler(len(loader.dataset), loader.batch_size, self.trainer.global_rank,
                                    self.trainer.world_size)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn)


def _gather(entries: list[dict[str, Any]], world_size: int, order: list[str]) -> list[dict[str, Any]]:
    """Every rank's entries, in dataset order, on every rank."""
    parts: list[Any] = [None] * world_size
    dist.all_gather_object(parts, entries)
    return in_order([entry for part in parts for entry in part], order)


class DistributedExplain(lightning.Callback):
    """Shares rank 0's run folder with every rank and gives each rank its own index file.

    Args:
        sink: this process's sink (its index is opened here, once the rank is known).
        datamodule: on every rank its ``exclude_ids`` become rank 0's (the images a resumed run holds).
        start_run: called on global rank 0 only: creates (or reopens) the run folder and returns it.
        dump: whether maps and the index are written.
    """

    def __init__(self, sink: ExplainSink, datamodule: Any, start_run: Callable[[], Path], dump: bool) -> None:
        self.sink = sink
        self.datamodule = datamodule
        self.start_run = start_run
        self.dump = dump
        self.run_dir: Path | None = None
        self.rank = 0
        self.world_size = 1
        self._order: list[str] = []
        self._zero_length = False

    def setup(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, stage: str) -> None:
        self.rank, self.world_size = trainer.global_rank, trainer.world_size
        shared = (str(self.start_run()), sorted(self.datamodule.exclude_ids)) if self.rank == 0 else None
        run_dir, excluded = trainer.strategy.broadcast(shared, src=0)
        self.run_dir = Path(run_dir)
        self.datamodule.exclude_ids = set(excluded)
        self._order = [record.image_id for record in self.datamodule.predict_records()]
        self.sink.use_rank(self.run_dir if self.dump else None, self.rank, self.world_size, self._order)
        # a rank may get no batch (fewer batches than ranks): it then only joins the merge
        self._zero_length = pl_module.allow_zero_length_dataloader_with_multiple_devices
        pl_module.allow_zero_length_dataloader_with_multiple_devices = True

    def teardown(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, stage: str) -> None:
        pl_module.allow_zero_length_dataloader_with_multiple_devices = self._zero_length
        if self.world_size > 1:
            on_disk = self.sink.index is not None
            self.sink.close_rank(None if on_disk else _gather(self.sink.local_entries(), self.world_size,
                                                              self._order))
            trainer.strategy.barrier("otx_xai_explain_end")  # every rank's index is complete on disk
