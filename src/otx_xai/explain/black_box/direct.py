"""DIRECT (Jones, Perttunen & Stuckman 1993), a derivative-free global minimizer over a box, asked for
points in rounds so that many searches can share one batched model call.

Each round picks the potentially optimal rectangles (those on the lower-right convex hull of
(size, value), improving on the best value by at least ``epsilon``·|best|), samples each one at a third
of its longest sides from its centre and trisects it, best dimension first. The search stops after
``budget`` evaluations (the last round is cut to fit).
"""

from __future__ import annotations

import numpy as np


class DirectSearch:
    """Minimizes a function over the box ``lower``..``upper`` (d dims) with ``budget`` evaluations.

    ``ask()`` gives the next points (n, d) (empty when done); ``tell(values)`` reports their values.
    ``points`` and ``values`` hold every evaluation made.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray, budget: int, epsilon: float = 0.1) -> None:
        self.lower = np.asarray(lower, dtype=np.float64)
        self.span = np.asarray(upper, dtype=np.float64) - self.lower
        self.budget = int(budget)
        self.epsilon = epsilon
        self._centers: list[np.ndarray] = []  # unit-cube centres of the rectangles
        self._levels: list[np.ndarray] = []  # times each side was trisected
        self._values: list[float] = []  # value at each rectangle's centre
        self._asked: list[tuple[int, list[int], np.ndarray]] = []  # (rectangle, dims, new unit centres)
        self._started = False

    @property
    def evaluations(self) -> int:
        return len(self._values)

    @property
    def done(self) -> bool:
        return self.evaluations >= self.budget

    @property
    def points(self) -> np.ndarray:
        """Every evaluated point (n, d), in the box's coordinates."""
        return self.lower + np.array(self._centers).reshape(-1, len(self.lower)) * self.span

    @property
    def values(self) -> np.ndarray:
        return np.array(self._values)

    def ask(self) -> np.ndarray:
        """The next round's points (n, d); empty once the budget is spent."""
        if self.done:
            return np.zeros((0, len(self.lower)))
        if not self._started:
            self._started = True
            self._asked = [(-1, [], np.full((1, len(self.lower)), 0.5))]
        else:
            self._asked = self._plan(self.budget - self.evaluations)
        unit = np.concatenate([new for _, _, new in self._asked])
        return self.lower + unit * self.span

    def tell(self, values: np.ndarray) -> None:
        """Values of the points the last ``ask`` returned, in order."""
        values = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
        start = 0
        for rect, dims, new in self._asked:
            part = values[start : start + len(new)]
            start += len(new)
            if rect < 0:
                self._add(new[0], np.zeros(len(self.lower), dtype=np.int64), part[0])
            elif len(part) == 2 * len(dims):
                self._split(rect, dims, new, part)
            else:  # cut by the budget: keep the evaluations, no split
                for centre, value in zip(new, part, strict=False):
                    self._add(centre, self._levels[rect] + 1, value)
        self._asked = []

    def _add(self, centre: np.ndarray, levels: np.ndarray, value: float) -> None:
        self._centers.append(centre)
        self._levels.append(levels)
        self._values.append(value)

    def _split(self, rect: int, dims: list[int], new: np.ndarray, values: list[float]) -> None:
        """Trisect ``rect`` along ``dims``, the dimension whose samples are best first."""
        pairs = {dim: (2 * k, 2 * k + 1) for k, dim in enumerate(dims)}
        order = sorted(dims, key=lambda dim: min(values[pairs[dim][0]], values[pairs[dim][1]]))
        levels = self._levels[rect].copy()
        for dim in order:
            levels[dim] += 1
            for index in pairs[dim]:
                self._add(new[index], levels.copy(), values[index])
        self._levels[rect] = levels

    def _plan(self, remaining: int) -> list[tuple[int, list[int], np.ndarray]]:
        """The potentially optimal rectangles' new sample points, largest rectangles first, within budget."""
        plan: list[tuple[int, list[int], np.ndarray]] = []
        for rect in self._potentially_optimal():
            levels = self._levels[rect]
            dims = [int(d) for d in np.flatnonzero(levels == levels.min())]
            delta = 3.0 ** -(levels.min() + 1)
            new = []
            for dim in dims:
                for sign in (1.0, -1.0):
                    point = self._centers[rect].copy()
                    point[dim] += sign * delta
                    new.append(point)
            take = min(len(new), remaining)
            plan.append((rect, dims, np.array(new[:take])))
            remaining -= take
            if remaining <= 0:
                break
        return plan

    def _potentially_optimal(self) -> list[int]:
        """Rectangles some Lipschitz constant K > 0 makes the most promising (one per size)."""
        values = np.array(self._values)
        sizes = np.array([0.5 * float(np.sqrt(np.sum(9.0 ** -lv.astype(np.float64)))) for lv in self._levels])
        best = float(values.min())
        candidates = []  # the lowest-valued rectangle of each size, by size
        for size in np.unique(sizes):
            members = np.flatnonzero(sizes == size)
            candidates.append(int(members[np.argmin(values[members])]))
        chosen = []
        for position, j in enumerate(candidates):
            smaller, larger = candidates[:position], candidates[position + 1 :]
            k_low = max([(values[j] - values[i]) / (sizes[j] - sizes[i]) for i in smaller], default=0.0)
            k_high = min([(values[i] - values[j]) / (sizes[i] - sizes[j]) for i in larger], default=np.inf)
            if k_low > k_high or k_high <= 0:
                continue
            if np.isfinite(k_high) and values[j] - k_high * sizes[j] > best - self.epsilon * abs(best):
                continue
            chosen.append(j)
        return sorted(chosen, key=lambda j: -sizes[j])
