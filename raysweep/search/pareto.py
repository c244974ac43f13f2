"""Pareto ranking of points with several objectives: NSGA-II's non-dominated sorting and
crowding distance (Deb, Pratap, Agarwal, Meyarivan, "A fast and elitist multiobjective genetic
algorithm: NSGA-II", IEEE TEC 2002). Pure Python, no Ray, no Optuna: the MOASHA rungs
(`raysweep.search.moasha`), the report's Pareto marker and the MLflow Pareto table use it.

    points = minimized([(0.9, 0.3), (0.8, 0.2)], ["max", "min"])   # every objective to minimize
    nsga2_order(points)     # indices, best first
    pareto_front(points)    # indices of the non-dominated points

Why our own: Optuna has the same sorting, but only as internals
(`optuna.study._multi_objective._fast_non_domination_rank`, `optuna.samplers._nsgaII`); no public
helper ranks arbitrary points, and these are a few lines.
"""

from __future__ import annotations

import math
from typing import Sequence

Point = tuple[float, ...]


def minimized(values: Sequence[Sequence[float]], modes: Sequence[str]) -> list[Point]:
    """The points with every `max` objective negated, so that smaller is better everywhere."""
    return [tuple(-float(v) if m == "max" else float(v) for v, m in zip(p, modes)) for p in values]


def dominates(a: Point, b: Point) -> bool:
    """`a` is no worse than `b` in every objective and better in one (all minimized)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def nondominated_fronts(points: Sequence[Point]) -> list[list[int]]:
    """The points' indices by front: first the non-dominated ones, then those only the first
    front dominates, and so on (NSGA-II's fast non-dominated sort)."""
    dominated_by = {i: [j for j in range(len(points)) if dominates(points[i], points[j])] for i in range(len(points))}
    count = {i: sum(dominates(points[j], points[i]) for j in range(len(points))) for i in range(len(points))}
    fronts, current = [], [i for i in range(len(points)) if count[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def crowding_distance(points: Sequence[Point], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance of each point of one front: the sum over objectives of the
    gap between its two neighbours, scaled by the front's range; the extremes get infinity,
    so a front is cut keeping its ends and its sparse regions."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for k in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: points[i][k])
        low, high = points[ordered[0]][k], points[ordered[-1]][k]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, i, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[i] += (points[after][k] - points[before][k]) / (high - low)
    return distance


def nsga2_order(points: Sequence[Point]) -> list[int]:
    """The points' indices best first: by front, within a front by crowding distance (largest
    first); ties keep the earlier point."""
    order = []
    for front in nondominated_fronts(points):
        distance = crowding_distance(points, front)
        order += sorted(front, key=lambda i: (-distance[i], i))
    return order


def pareto_front(points: Sequence[Point]) -> list[int]:
    """The indices of the non-dominated points, in their order."""
    fronts = nondominated_fronts(points)
    return sorted(fronts[0]) if fronts else []
