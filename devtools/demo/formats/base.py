"""What every run-format generator provides, and the shared recipe for runs of a given quality.

A generator makes, for one split, the items of a task (with their true answers), the files the
organizers stage for participants, and the label files (released with the development split,
kept as gold for the test split). From the test items it then writes runs: a run of quality q
answers ``round(q * n)`` items right, chosen at random, and the others wrong in the way that is
natural for the format (a wrong label, a shifted mask, a shuffled ranking). Two runs made from
the same random stream give the same answers; ``reverse`` writes them in the opposite order, which
is how the demo makes a tie between two teams with different bytes.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from devtools.demo.encoding import png_bytes


@dataclass
class SplitMaterial:
    """One split of one task: the true items, the files participants get, the label files."""

    items: list[Any]
    inputs: dict[str, bytes]
    labels: dict[str, bytes]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InvalidRun:
    """A run that breaks one real rule of its format; ``rule`` says which, in words."""

    data: bytes
    rule: str


class FormatGenerator:
    """Base class: subclasses set ``run_format`` and implement the four hooks below."""

    run_format: ClassVar[str]
    test_count: ClassVar[int] = 12
    dev_count: ClassVar[int] = 6

    def split(self, rng: random.Random, split: str, count: int) -> SplitMaterial:
        """Items, input files and label files of one split (ids unique to that split)."""
        raise NotImplementedError

    def predict(self, material: SplitMaterial, index: int, correct: bool, rng: random.Random) -> Any:
        """A run's answer for item ``index``: the true one when ``correct``, else a wrong one."""
        raise NotImplementedError

    def encode(self, material: SplitMaterial, answers: list[Any], system: str, variant: str | None) -> bytes:
        """The run file holding ``answers`` (in that order), as the format's schema wants it."""
        raise NotImplementedError

    def invalid_run(self, material: SplitMaterial, rng: random.Random, system: str) -> InvalidRun:
        """A run that a validator must refuse, and the rule it breaks."""
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------------------

    def run(self, material: SplitMaterial, quality: float, rng: random.Random, system: str, *,
            reverse: bool = False, variant: str | None = None) -> bytes:
        """A run answering ``round(quality * n)`` items right."""
        answers = self.answers(material, quality, rng)
        if reverse:
            answers = answers[::-1]
        return self.encode(material, answers, system, variant)

    def answers(self, material: SplitMaterial, quality: float, rng: random.Random) -> list[Any]:
        count = len(material.items)
        right = set(rng.sample(range(count), round(quality * count)))
        return [self.predict(material, index, index in right, rng) for index in range(count)]


def tiny_picture(rng: random.Random, height: int = 16, width: int = 16) -> np.ndarray:
    """A small RGB picture: a colour gradient with a brighter blob, different for every draw."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.array([rng.randrange(40, 160) for _ in range(3)], dtype=np.int32)
    slope = np.array([rng.randrange(-4, 5) for _ in range(3)], dtype=np.int32)
    picture = base + slope * (rows[..., None] + cols[..., None])
    centre_row, centre_col = rng.randrange(height), rng.randrange(width)
    blob = (rows - centre_row) ** 2 + (cols - centre_col) ** 2 <= max(2, height // 4) ** 2
    picture[blob] += 70
    return np.clip(picture, 0, 255).astype(np.uint8)


def tiny_png(rng: random.Random, height: int = 16, width: int = 16) -> bytes:
    return png_bytes(tiny_picture(rng, height, width))


def hex_id(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))
