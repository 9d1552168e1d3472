"""The example jobs: what a map and a reduce do, and how map output is partitioned.

Keys and values are strings (input lines are decoded as UTF-8 with
surrogateescape, so any bytes survive the round trip to the output).
"""

from __future__ import annotations

import bisect
import re
import zlib
from collections.abc import Callable, Iterable, Iterator


def hash_partition(key: str, reduces: int) -> int:
    # crc32, not hash(): Python salts str hashes per process and every map must agree.
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) % reduces


class Job:
    """One job kind. ``combine`` runs on map output, ``reduce`` on merged groups."""

    name = "?"
    combine_sums = False

    def __init__(self, conf: dict):
        self.conf = conf

    def map(self, line: str) -> Iterable[tuple[str, object]]:
        raise NotImplementedError

    def reduce(self, key: str, values: Iterator[object]) -> Iterable[str]:
        raise NotImplementedError

    def partitioner(self, reduces: int, split_points: list[str] | None) -> Callable[[str], int]:
        return lambda key: hash_partition(key, reduces)


class WordCount(Job):
    """Counts whitespace-separated words, like Hadoop's WordCount example."""

    name = "wordcount"
    combine_sums = True

    def map(self, line):
        for word in line.split():
            yield word, 1

    def reduce(self, key, values):
        yield f"{key}\t{sum(values)}"


class Grep(Job):
    """Counts the matches of mapreduce.mapper.regex (Hadoop's Grep example's first job)."""

    name = "grep"
    combine_sums = True

    def __init__(self, conf):
        super().__init__(conf)
        pattern = conf.get("mapreduce.mapper.regex")
        if not pattern:
            raise ValueError("grep needs a pattern (mapreduce.mapper.regex)")
        self.regex = re.compile(pattern)
        self.group = int(conf.get("mapreduce.mapper.regexmapper..group", 0))

    def map(self, line):
        for m in self.regex.finditer(line):
            yield m.group(self.group), 1

    def reduce(self, key, values):
        yield f"{key}\t{sum(values)}"


class Sort(Job):
    """Sorts lines totally: a sampling partitioner sends key ranges to reducers in order."""

    name = "sort"

    def map(self, line):
        yield line, None

    def reduce(self, key, values):
        for _ in values:  # duplicates are kept
            yield key

    def partitioner(self, reduces, split_points):
        points = split_points or []
        return lambda key: bisect.bisect_right(points, key)


JOBS: dict[str, type[Job]] = {j.name: j for j in (WordCount, Grep, Sort)}


def make_job(conf: dict) -> Job:
    kind = conf.get("mapreduce.job.kind", "")
    if kind not in JOBS:
        raise ValueError(f"unknown job {kind!r}; known: {', '.join(sorted(JOBS))}")
    return JOBS[kind](conf)


def choose_split_points(samples: list[str], reduces: int) -> list[str]:
    """TotalOrderPartitioner's cut points from InputSampler's sample: reduces-1 keys."""
    if reduces <= 1 or not samples:
        return []
    samples = sorted(samples)
    step = len(samples) / reduces
    points = []
    for i in range(1, reduces):
        k = samples[min(len(samples) - 1, int(round(step * i)))]
        if not points or k > points[-1]:
            points.append(k)
    return points
