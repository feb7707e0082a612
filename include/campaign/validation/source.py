"""Reading a run's bytes without trusting them: size limits, zip safety, bounded reads.

Nothing is ever extracted to disk: members are read into memory one at a time, each read bounded
by its declared size, after the whole archive has been checked against the run limits (member
count, total uncompressed size, compression ratio, unsafe names, symbolic links, encryption).
"""
from __future__ import annotations

import re
import stat
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from include.campaign.validation.findings import Example, Findings, StopValidation, quoted
from include.campaign.validation.limits import MIB, RunLimits
from include.campaign.validation.schema import RunSchema

ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# Files that archivers add on their own; they are skipped, never reported.
ARCHIVER_LITTER = re.compile(r"(?:^|/)(?:__MACOSX/.*|\.DS_Store|Thumbs\.db|desktop\.ini)$")
# Small members legitimately compress very well (a CSV of repeated ids); the ratio rule is for
# members big enough to hurt.
RATIO_RULE_MIN_BYTES = MIB
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError, ValueError)


@dataclass
class RunMember:
    """One file of a run: its name as shown to the participant and a way to read it."""

    name: str
    size: int
    info: zipfile.ZipInfo | None = None


class RunSource:
    """The run file, opened: either a bare file or a checked zip archive."""

    def __init__(self, path: Path, limits: RunLimits, findings: Findings):
        self.path = path
        self.display_name = path.name
        self.limits = limits
        self.findings = findings
        self.archive: zipfile.ZipFile | None = None

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()

    # -- the file itself -------------------------------------------------------------------

    def fail(self, rule: str, description: str, message: str) -> None:
        self.findings.add(rule, description, Example(file=self.display_name, message=message))
        raise StopValidation

    def check_file(self) -> int:
        """Size and kind checks made before a single byte is read."""
        try:
            status = self.path.stat()
        except OSError:
            self.fail("file.missing", "the run file must exist", f"run file {quoted(self.path)} not found")
        if not stat.S_ISREG(status.st_mode):
            self.fail("file.kind", "the run must be a regular file", "the run is not a regular file")
        if status.st_size == 0:
            self.fail("file.empty", "the run file must not be empty", "the run file is empty (0 bytes)")
        if status.st_size > self.limits.max_bytes:
            self.fail(
                "file.size-limit",
                f"a run file holds at most {self.limits.max_bytes} bytes",
                f"the run file is {status.st_size} bytes, over the size limit of {self.limits.max_bytes} bytes",
            )
        return status.st_size

    def read_bare(self) -> bytes:
        """The whole file, read with a bound in case it grows while being read."""
        with self.path.open("rb") as handle:
            data = handle.read(self.limits.max_bytes + 1)
        if len(data) > self.limits.max_bytes:
            self.fail("file.size-limit", f"a run file holds at most {self.limits.max_bytes} bytes",
                      f"the run file is over the size limit of {self.limits.max_bytes} bytes")
        return data

    def is_zip(self) -> bool:
        with self.path.open("rb") as handle:
            return handle.read(4) in ZIP_SIGNATURES

    # -- archives --------------------------------------------------------------------------

    def open_archive(self, schema: RunSchema) -> list[RunMember]:
        """Open the zip, refuse it as a whole when any entry is unsafe, return the members."""
        description = f"the run must be a zip archive holding {schema.container.member_hint}"
        if not self.is_zip():
            self.fail("container.not-zip", description,
                      f"the run file is not a zip archive; this task expects a zip holding {schema.container.member_hint}")
        try:
            self.archive = zipfile.ZipFile(self.path)
            entries = self.archive.infolist()
        except READ_ERRORS as error:
            self.fail("container.not-zip", description, f"the run file is not a readable zip archive ({error})")
        self._check_entries(entries)
        return [RunMember(info.filename, info.file_size, info) for info in entries
                if not info.is_dir() and not ARCHIVER_LITTER.search(info.filename)]

    def _check_entries(self, entries: list[zipfile.ZipInfo]) -> None:
        limits = self.limits
        if len(entries) > limits.max_members:
            self.fail("container.member-limit", f"a zip holds at most {limits.max_members} entries",
                      f"the zip holds {len(entries)} entries, over the limit of {limits.max_members}")
        self._refuse_each(entries, unsafe_name, "container.unsafe-path",
                          "no absolute paths or '..' in member names (nothing may land outside its folder)")
        self._refuse_each(entries, symlink_problem, "container.symlink", "no symbolic links in the archive")
        self._refuse_each(entries, encryption_problem, "container.encrypted", "no encrypted members")
        self._refuse_each(entries, lambda info: ratio_problem(info, limits), "container.compression-ratio",
                          f"no member expands more than {limits.max_compression_ratio:g} times (zip bomb)")
        for name in duplicate_names(entries):
            self.findings.add("container.duplicate-member", "no member name twice in the archive",
                              Example(file=self.display_name, member=name, message=f"member {quoted(name)} appears more than once"))
        total = sum(info.file_size for info in entries)
        if total > limits.max_uncompressed_bytes:
            self.findings.add("container.uncompressed-limit",
                              f"the members total at most {limits.max_uncompressed_bytes} bytes uncompressed",
                              Example(file=self.display_name, message=(
                                  f"the archive would expand to {total} bytes, over the uncompressed size limit "
                                  f"of {limits.max_uncompressed_bytes} bytes")))
        if self.findings:
            raise StopValidation

    def _refuse_each(self, entries, problem_of, rule: str, description: str) -> None:
        for info in entries:
            problem = problem_of(info)
            if problem:
                self.findings.add(rule, description,
                                  Example(file=self.display_name, member=info.filename, message=problem))

    def read_member(self, member: RunMember) -> bytes | None:
        """A member's bytes, or None after recording why it cannot be read."""
        if member.info is None:
            return self.read_bare()
        try:
            with self.archive.open(member.info) as handle:
                data = handle.read(member.info.file_size + 1)
        except READ_ERRORS as error:
            self.findings.add("container.corrupt-member", "every member must be readable",
                              Example(file=self.display_name, member=member.name,
                                      message=f"member {quoted(member.name)} is corrupt and cannot be read ({error})"))
            return None
        return data


def duplicate_names(entries: list[zipfile.ZipInfo]) -> list[str]:
    """Member names that occur more than once, sorted (one pass: 100,000 entries take milliseconds)."""
    counts = Counter(info.filename for info in entries)
    return sorted(name for name, count in counts.items() if count > 1)


def unsafe_name(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        return f"member {quoted(info.filename)} has an unsafe path (absolute or with '..'); it is not extracted"
    if any(ord(ch) < 32 for ch in name):
        return f"member {quoted(info.filename)} has control characters in its name"
    return None


def symlink_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        return f"member {quoted(info.filename)} is a symbolic link; archives must hold regular files only"
    return None


def encryption_problem(info: zipfile.ZipInfo) -> str | None:
    if info.flag_bits & 0x1:
        return f"member {quoted(info.filename)} is encrypted; upload an archive without a password"
    return None


def ratio_problem(info: zipfile.ZipInfo, limits: RunLimits) -> str | None:
    if info.file_size < RATIO_RULE_MIN_BYTES:
        return None
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_compression_ratio:
        return (f"member {quoted(info.filename)} would expand {ratio:,.0f} times ({info.file_size} bytes), "
                f"over the compression ratio limit of {limits.max_compression_ratio:g} (a zip bomb?)")
    return None


def select_members(source: RunSource, members: list[RunMember], schema: RunSchema) -> list[RunMember]:
    """The members a one-file format reads; refuses too many or too few matching files."""
    container = schema.container
    pattern = re.compile(container.member_pattern, re.IGNORECASE)
    matching = [m for m in members if pattern.fullmatch(m.name)]
    others = [m for m in members if not pattern.fullmatch(m.name)]
    description = f"the zip must hold {container.member_hint}"
    for member in others:
        source.findings.add("container.unexpected-member", description,
                            Example(file=source.display_name, member=member.name,
                                    message=f"unexpected member {quoted(member.name)}; the zip must hold {container.member_hint}"))
    if len(matching) < container.min_members:
        source.fail("container.member-count", description, f"the zip holds no matching file; it must hold {container.member_hint}")
    if container.max_members is not None and len(matching) > container.max_members:
        names = ", ".join(quoted(m.name) for m in matching[:5])
        source.fail("container.member-count", description,
                    f"the zip holds {len(matching)} matching files ({names}); it must hold {container.member_hint}")
    return matching


def iter_members(source: RunSource, members: list[RunMember]) -> Iterator[tuple[RunMember, bytes]]:
    """Each readable member with its bytes, one at a time (only one is in memory at once)."""
    for member in members:
        data = source.read_member(member)
        if data is not None:
            yield member, data


def open_run(source: RunSource, schema: RunSchema) -> list[RunMember]:
    """The members to read: the bare file itself, or the archive's (checked) members."""
    size = source.check_file()
    container = schema.container
    if container.kind == "zip" or (container.zipped_allowed and source.is_zip()):
        members = source.open_archive(schema)
        if schema.file.type in ("png", "tiff"):
            if not members:
                source.fail("container.member-count", f"the zip must hold {container.member_hint}",
                            f"the zip holds no files; it must hold {container.member_hint}")
            return members
        return check_text_size(source, select_members(source, members, schema))
    return check_text_size(source, [RunMember(source.display_name, size)])


def check_text_size(source: RunSource, members: list[RunMember]) -> list[RunMember]:
    """A text member is parsed whole (about ten times its size in memory): refuse one over ``max_text_bytes``."""
    limit = source.limits.max_text_bytes
    for member in members:
        if member.size > limit:
            source.fail("file.text-size-limit", f"a run's text (CSV or JSON) holds at most {limit} bytes",
                        f"{quoted(member.name)} holds {member.size} bytes of text, over this task's limit of {limit} bytes "
                        "(real runs of this kind are a few MiB: check that the file holds only your results)")
    return members

