"""Pointing at a row of a parsed run: the file and line (or archive member) it came from."""
from __future__ import annotations

import pandas as pd

from include.campaign.validation.findings import Example

LINE = "__line__"
MEMBER = "__member__"


class Locator:
    """Builds report examples for rows of ``frame`` (positions, not index labels)."""

    def __init__(self, frame: pd.DataFrame, file: str):
        self.file = file
        self.lines = frame[LINE].to_numpy() if LINE in frame else None
        self.members = frame[MEMBER].to_numpy() if MEMBER in frame else None

    def example(self, position: int, message: str, value: object = None) -> Example:
        line = int(self.lines[position]) if self.lines is not None else None
        member = str(self.members[position]) if self.members is not None else None
        return Example(file=self.file, line=line, member=member, message=message, value=value)

    def file_example(self, message: str, value: object = None) -> Example:
        return Example(file=self.file, message=message, value=value)
