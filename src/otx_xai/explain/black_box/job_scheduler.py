"""Many independent ask/tell jobs (AISE's searches: one per image, target and kernel width) through one
model runner, so the device never waits for a slow search.

A job asks for images to score, waits for their outputs, then asks again (its next round depends on
them). Run in lockstep, every round would end with the device idle while the last batch finishes and
the searches plan; here a job asks again as soon as its own outputs are back, while the other jobs'
batches keep the runner's requests busy (an IR's asynchronous queue: ``IRModel.infer_batches`` takes
``None`` as "nothing to start yet: hand me the oldest finished batch"). The ready jobs' images are packed
into batches of ``batch_size`` (a job's round may span batches, a batch may hold several jobs' images),
so an IR sees few distinct batch sizes (each gets a static compiled copy) and torch sees full batches;
a few jobs on an IR's several streams get smaller batches (``jobs_batch_size``).
A job's results depend only on its own outputs, so the maps are the same whatever the scheduling.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from otx_xai.explain.black_box.runners import ModelRunner, stream_outputs


class Job(Protocol):
    """One sequential search: ``ask`` the next images (n, 3, h, w) float32, None once done; ``tell`` their
    outputs (the runner's, by name, for exactly those n images in order)."""

    def ask(self) -> np.ndarray | None: ...

    def tell(self, outputs: dict[str, np.ndarray]) -> None: ...


class _Pending:
    """A job's asked images whose outputs are still being collected (its round may span batches)."""

    def __init__(self, job: Job, count: int) -> None:
        self.job, self.count, self.parts = job, count, []

    def add(self, part: dict[str, np.ndarray]) -> bool:
        """Keep one batch's share of the outputs; True once all ``count`` images have theirs."""
        self.parts.append(part)
        return sum(len(next(iter(p.values()))) for p in self.parts) >= self.count

    def outputs(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate([p[name] for p in self.parts]) for name in self.parts[0]}


def run_jobs(jobs: Sequence[Job], run: ModelRunner, batch_size: int) -> None:
    """Run every job to its end through ``run``, at most ``batch_size`` images per batch (fewer for a few
    jobs on a runner with several streams: ``jobs_batch_size``)."""
    ready: deque[Job] = deque(jobs)
    shares: deque[list[tuple[_Pending, int]]] = deque()  # per batch in flight: (job's pending, its images)
    in_flight = 0
    batch_size = jobs_batch_size(len(jobs), batch_size, int(getattr(run, "in_flight", 1) or 1))

    def batches() -> Iterator[np.ndarray | None]:
        nonlocal in_flight
        carried: list[tuple[_Pending, np.ndarray]] = []  # asked images not yet in a batch
        while True:
            while ready and sum(len(images) for _, images in carried) < batch_size:
                job = ready.popleft()
                images = job.ask()
                if images is not None and len(images):
                    carried.append((_Pending(job, len(images)), images))
            if not carried:
                if in_flight == 0:
                    return
                yield None  # every job waits for an output: let the oldest batch finish first
                continue
            batch, share, room = [], [], batch_size
            while carried and room:
                pending, images = carried[0]
                take = images[:room]
                batch.append(take)
                share.append((pending, len(take)))
                room -= len(take)
                if len(take) == len(images):
                    carried.pop(0)
                else:
                    carried[0] = (pending, images[len(take):])
            shares.append(share)
            in_flight += 1
            yield np.ascontiguousarray(np.concatenate(batch), dtype=np.float32)

    for outputs in stream_outputs(run, batches()):
        in_flight -= 1
        start = 0
        for pending, count in shares.popleft():
            part = {name: value[start : start + count] for name, value in outputs.items()}
            start += count
            if pending.add(part):
                pending.job.tell(pending.outputs())
                ready.append(pending.job)


def jobs_batch_size(jobs: int, batch_size: int, streams: int) -> int:
    """Images per batch for ``jobs`` searches on a runner with ``streams`` parallel streams: at most
    ``batch_size``, and with several streams at most ceil(jobs / streams). A search's round is a few
    images (DIRECT's are mostly 4 points) and it waits for all of them, so a few searches in big batches
    leave cores idle while their rounds come back together; ~jobs/streams images a batch gives each stream
    about one batch per search round. Measured (``fcos_light`` IR at 128 px, 2 streams, AISE detection at
    the speed preset): 2 boxes (6 searches) ran 1.20× its inference limit in batches of 6, 1.09× in
    batches of 3; 16 boxes (48 searches) 1.035× in batches of 6, 1.09× in batches of 3. A synchronous
    runner (one stream: torch) keeps full batches."""
    batch_size = max(1, int(batch_size))
    if streams <= 1:
        return batch_size
    return max(1, min(batch_size, -(-int(jobs) // int(streams))))
