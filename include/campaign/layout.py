"""The object-store key layout: the one place that knows where every kind of object lives.

Every key starts with the campaign id, so several campaigns can share one bucket::

    <campaign>/staging/<task>/<split>/…        data as organizers stage it (private)
    <campaign>/gold/<task>/<split>/…           ground truth (private, never released)
    <campaign>/releases/<task>/<split>/…       what participants may download (presigned links)
    <campaign>/releases/<task>/<split>.json    the record of that release (files, sha256, withheld)
    <campaign>/registrations/inbox/…           registrations as they arrive
    <campaign>/registrations/teams/<team>…     accepted registrations
    <campaign>/registrations/rejected/…        refused registrations with the reason
    <campaign>/registrations/accepted/…        accepted registration documents as they arrived
    <campaign>/registrations/agreements/…      signed user agreements (PDF) the documents point to
    <campaign>/registrations/approvals/<team>/<task>.json   an organizer's agreement decision
    <campaign>/registrations/confirmations/<digest>.json    a contact's proof of address for one document
    <campaign>/registrations/sign-in/<team>.json            an organizer's revocation of a team's sign-in links
    <campaign>/submissions/<task>/<team>/…     participants' uploads (presigned PUT or POST)
    <campaign>/receipts/<task>/<team>/<run>/<version>.json   the submission check's receipt of one upload version
    <campaign>/collected/<task>/…              frozen runs at the deadline + manifest with sha256
    <campaign>/evaluations/<task>/<version>/…  validation reports, per-run and per-item scores, lineage
    <campaign>/leaderboards/<task>/…           exports per evaluation version
    <campaign>/public/leaderboards/<task>/…    leaderboards once results are published
    <campaign>/outbox/<purpose>/<milestone>/<recipient>   one marker per e-mail sent
    <campaign>/undeliverable/<purpose>/<milestone>/<recipient>.json   an address the SMTP server refused for good
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

SPLITS = ("dev", "test")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=-]*$")


class UnsafeKeyError(ValueError):
    """A key segment that could escape its prefix (``..``, ``/``) or is empty."""


def segment(value: str) -> str:
    """One path segment of a key: refuses slashes, ``..`` and anything outside a safe alphabet."""
    text = str(value)
    if not _SAFE_SEGMENT.match(text) or ".." in text:
        raise UnsafeKeyError(f"{text!r} cannot be part of an object key (letters, digits and ._@+=- only)")
    return text


def relative_path(prefix: str, key: str, what: str) -> str:
    """The part of ``key`` under ``prefix`` as a relative path that stays inside the local folder it is
    joined to (nothing absolute, no ``..``); refuses others with :class:`UnsafeKeyError`, naming the
    object as ``what`` ("gold object", say)."""
    relative = PurePosixPath(key[len(prefix):])
    if relative.is_absolute() or any(part in ("", ".", "..") for part in relative.parts):
        raise UnsafeKeyError(f"{what} {key!r} has an unsafe name; rename it")
    return str(relative)


@dataclass(frozen=True)
class Layout:
    campaign: str

    def _key(self, *parts: str) -> str:
        return "/".join([segment(self.campaign), *parts])

    # data
    def staging(self, task: str, split: str) -> str:
        return self._key("staging", segment(task), _split(split)) + "/"

    def staging_manifest(self, task: str, split: str) -> str:
        return self.staging(task, split) + "MANIFEST.json"

    def gold(self, task: str, split: str = "test") -> str:
        return self._key("gold", segment(task), _split(split)) + "/"

    def releases(self, task: str, split: str) -> str:
        return self._key("releases", segment(task), _split(split)) + "/"

    def release_record(self, task: str, split: str) -> str:
        """What one release published (files, checksums, what was withheld); beside the split's folder."""
        return self._key("releases", segment(task), _split(split) + ".json")

    # registrations
    def registrations_inbox(self) -> str:
        return self._key("registrations", "inbox") + "/"

    def registrations_rejected(self) -> str:
        return self._key("registrations", "rejected") + "/"

    def registrations_teams(self) -> str:
        return self._key("registrations", "teams") + "/"

    def team_record(self, team_id: str) -> str:
        return self._key("registrations", "teams", segment(team_id) + ".json")

    def registrations_snapshots(self) -> str:
        return self._key("registrations", "snapshots") + "/"

    def registrations_snapshot(self, stamp: str) -> str:
        """The team list frozen when registration closed at ``stamp``."""
        return self.registrations_snapshots() + f"teams-{segment(stamp)}.csv"

    def inbox_document(self, name: str) -> str:
        return self.registrations_inbox() + segment(name) + ".json"

    def kept_document(self, outcome: str, document_id: str) -> str:
        """The folder where a registration document is kept once taken in: ``accepted`` or ``rejected``."""
        if outcome not in ("accepted", "rejected"):
            raise UnsafeKeyError(f"registration documents are kept as accepted or rejected, not {outcome!r}")
        return self._key("registrations", outcome, segment(document_id)) + "/"

    def kept_document_file(self, outcome: str, document_id: str, name: str) -> str:
        """A file of a kept registration document's folder: ``registration.json`` or ``reason.json``."""
        return self.kept_document(outcome, document_id) + segment(name)

    def approvals(self) -> str:
        return self._key("registrations", "approvals") + "/"

    def approval_record(self, team_id: str, task: str) -> str:
        return self.approvals() + segment(team_id) + "/" + segment(task) + ".json"

    def registrations_accepted(self) -> str:
        return self._key("registrations", "accepted") + "/"

    def agreements(self) -> str:
        return self._key("registrations", "agreements") + "/"

    def agreement(self, name: str) -> str:
        """A signed agreement PDF, by its name under the agreements folder (as the registration document gives it)."""
        return self.agreements() + name

    def confirmation_record(self, digest: str) -> str:
        return self._key("registrations", "confirmations", segment(digest) + ".json")

    def sign_in_revocation(self, team_id: str) -> str:
        return self._key("registrations", "sign-in", segment(team_id) + ".json")

    # runs
    def submissions(self, task: str, team_id: str | None = None) -> str:
        base = self._key("submissions", segment(task)) + "/"
        return base + (segment(team_id) + "/" if team_id is not None else "")

    def submission(self, task: str, team_id: str, run: str) -> str:
        """Where a team uploads one run (its own slot: the presigned links name exactly this key)."""
        return self.submissions(task, team_id) + segment(run)

    def receipts(self, task: str, team_id: str | None = None) -> str:
        base = self._key("receipts", segment(task)) + "/"
        return base + (segment(team_id) + "/" if team_id is not None else "")

    def receipt(self, task: str, team_id: str, run: str, version_id: str) -> str:
        return self.receipts(task, team_id) + segment(run) + "/" + segment(version_id) + ".json"

    def collected(self, task: str) -> str:
        return self._key("collected", segment(task)) + "/"

    def collection_manifest(self, task: str) -> str:
        return self.collected(task) + "manifest.json"

    def collected_run(self, task: str, team_id: str, run: str) -> str:
        """The frozen copy of one team's run at the deadline; team and run as the upload's own key
        named them (``submissions/<task>/<team>/<run>``, one segment each, never re-checked here)."""
        return self.collected(task) + f"{team_id}/{run}"

    # evaluations
    def evaluations(self, task: str, version: str | None = None) -> str:
        base = self._key("evaluations", segment(task)) + "/"
        return base + (segment(version) + "/" if version is not None else "")

    def evaluation_record(self, task: str, version: str, name: str) -> str:
        """One of a version's own records, by file name (version.json, evaluation.json, diff.json, lineage.json)."""
        return self.evaluations(task, version) + segment(name)

    def run_outputs(self, task: str, version: str, team_id: str, run: str) -> str:
        """The folder of one run's outputs in the version that scored it (report, metrics, per-item scores)."""
        return self.evaluations(task, version) + "runs/" + segment(team_id) + "/" + segment(run) + "/"

    def run_output(self, task: str, version: str, team_id: str, run: str, name: str) -> str:
        """One output of a run (report.json, report.txt, metrics.json, per_item.csv; the model part's
        under ``models/``: each segment of ``name`` is checked)."""
        return self.run_outputs(task, version, team_id, run) + "/".join(segment(part) for part in name.split("/"))

    def leaderboards(self, task: str, version: str | None = None) -> str:
        base = self._key("leaderboards", segment(task)) + "/"
        return base + (segment(version) + "/" if version is not None else "")

    def leaderboard_export(self, task: str, version: str, name: str) -> str:
        return self.leaderboards(task, version) + segment(name)

    def publication_record(self, task: str) -> str:
        """The record of a task's last publication (version, since, who, when)."""
        return self.leaderboards(task) + "published.json"

    def publication_history(self, task: str, version: str) -> str:
        """The first record of one version's publication (kept: who approved it, when)."""
        return self.leaderboards(task) + "publications/" + segment(version) + ".json"

    def public_leaderboards(self, task: str) -> str:
        return self._key("public", "leaderboards", segment(task)) + "/"

    def public_leaderboard(self, task: str, name: str, version: str | None = None) -> str:
        """A published export: the current one, or the copy kept for ``version``."""
        return self.public_leaderboards(task) + (segment(version) + "/" if version is not None else "") + segment(name)

    # mail
    def outbox(self, purpose: str, milestone: str, recipient: str) -> str:
        return self._key("outbox", segment(purpose), segment(milestone), segment(recipient.strip().lower()))

    def outbox_prefix(self, purpose: str | None = None) -> str:
        return self._key("outbox", segment(purpose)) + "/" if purpose else self._key("outbox") + "/"

    def undeliverable(self, purpose: str, milestone: str, recipient: str) -> str:
        return self._key("undeliverable", segment(purpose), segment(milestone), segment(recipient.strip().lower()) + ".json")

    def undeliverable_prefix(self) -> str:
        return self._key("undeliverable") + "/"


def _split(split: str) -> str:
    if split not in SPLITS:
        raise UnsafeKeyError(f"unknown data split {split!r}; expected one of {', '.join(SPLITS)}")
    return split
