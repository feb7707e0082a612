"""Teams and how the lifecycle stages talk to them: records, stable ids, agreement decisions, notices.

A team is one JSON record under ``registrations/teams/<team>.json``; its id is derived from the
normalised team name (NFKC, case-folded, spaces collapsed), so the same registration always yields
the same id. Names are also compared by how they *look* (:func:`name_skeleton`, after Unicode TS #39:
``VISI0N LAB`` and ``VISION LAB``, Cyrillic ``КОВЕ`` and Latin ``KOBE``), and a name mixing scripts
a reader cannot tell apart is refused (:func:`mixed_script_problem`); :class:`TeamDirectory` gives an
intake the registered teams by name, by look and by the sha256 of their agreement files. A team may receive the
data of a task when the task needs no signed user agreement, or when an organizer approved the
team's agreement (``registrations/approvals/<team>/<task>.json``).

:class:`Notices` sends the stages' e-mails through the outbox (each message at most once) and keeps
going when one recipient fails: a refused address is recorded and reported to the organizers; a
server that cannot be reached stops the run's sending and is raised as :class:`DeliveryError`, so
a retry sends only what is missing. The small write helpers here leave an object untouched when its content would not change,
so a re-run adds no object version.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from include.campaign.config import MILESTONE_LABELS, Campaign
from include.campaign.context import CampaignContext
from include.campaign.layout import UnsafeKeyError
from include.campaign.mail import IN_PROGRESS, REFUSED, SENT, UNDELIVERABLE, UNKNOWN, MailError, SendResult, render_mail
from include.campaign.store import ObjectStore, dump_json

UTC = dt.timezone.utc
TASK_DATES = ("registration_closes", "dev_data_release", "test_data_release", "run_deadline", "working_notes_deadline")
NOT_REQUIRED, APPROVED, PENDING, REFUSED = "not required", "approved", "pending", "refused"


class DeliveryError(RuntimeError):
    """Some e-mails could not be handed to the SMTP server; a re-run sends exactly those."""


# --- moments as people read them -----------------------------------------------------------------


def local_and_utc_text(campaign: Campaign, moment: dt.datetime) -> str:
    """``2025-05-10 23:59:59 CEST (21:59:59 UTC)``: the campaign's zone first, then UTC."""
    local = moment.astimezone(campaign.zone)
    text = local.strftime("%Y-%m-%d %H:%M:%S %Z")
    if local.utcoffset() == dt.timedelta(0):
        return text if local.tzname() == "UTC" else f"{text} (UTC)"
    return f"{text} ({moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC)"


def task_dates(campaign: Campaign, task_id: str, milestones: Iterable[str] = TASK_DATES) -> list[dict[str, str]]:
    """The task's effective dates, labelled, for a mail."""
    return [
        {"milestone": name, "label": MILESTONE_LABELS[name], "when": local_and_utc_text(campaign, campaign.milestone_time(name, task_id))}
        for name in milestones
    ]


def utc_stamp(moment: dt.datetime) -> str:
    """A key-safe, sortable UTC stamp: ``20250510T235959Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def in_utc(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# --- writes that change nothing when nothing changed ----------------------------------------------


def put_json_if_changed(store: ObjectStore, key: str, value: Any) -> bool:
    """Write ``value`` unless the object already holds exactly these bytes; True when written."""
    return put_bytes_if_changed(store, key, dump_json(value), content_type="application/json")


def put_bytes_if_changed(store: ObjectStore, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
    if _holds(store, key, data):
        return False
    store.put_bytes(key, data, content_type=content_type)
    return True


def _holds(store: ObjectStore, key: str, data: bytes) -> bool:
    current = store.head(key)
    if current is None or current.size != len(data):
        return False
    # A single-part upload's ETag is the MD5 of its bytes on S3, MinIO and moto: equal means equal,
    # with no download. Encrypted buckets use other ETags, so a mismatch is settled by reading.
    if current.etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
        return True
    return store.get_bytes(key) == data


def copy_if_changed(store: ObjectStore, source_key: str, target_key: str, source_etag: str, source_version: str | None = None) -> bool:
    """Server-side copy unless the target already has the source's ETag (single-part copies keep it)."""
    target = store.head(target_key)
    if target is not None and target.etag == source_etag:
        return False
    store.copy(source_key, target_key, source_version)
    return True


# --- team ids and records ------------------------------------------------------------------------


def normalise_team_name(name: str) -> str:
    """Case, width and spacing do not make a new team: ``"  Team  ÄI "`` and ``"team äi"`` are one."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


# Scripts a name may combine (Unicode TS #39, "highly restrictive"): one script, or Latin with the
# scripts Chinese, Japanese and Korean writing mix with it. Common (digits, punctuation) and
# Inherited (combining marks) go with any script.
_SCRIPT_MIXES = ({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "BOPOMOFO"}, {"LATIN", "HAN", "HANGUL"})
_ANY_SCRIPT = {"COMMON", "INHERITED"}


def name_scripts(name: str) -> set[str]:
    """The scripts of a name's letters (``{"LATIN", "CYRILLIC"}``), Common and Inherited left out."""
    from confusable_homoglyphs import categories

    return set(categories.unique_aliases(unicodedata.normalize("NFKC", name))) - _ANY_SCRIPT


def mixed_script_problem(name: str) -> str | None:
    """Why the scripts of ``name`` cannot be told apart by a reader, or None.

    ``Vіsion Lab`` with a Cyrillic ``і`` reads as ``Vision Lab``: no real name mixes Latin with
    Cyrillic or Greek letters, so such a name is refused rather than registered as a look-alike.
    """
    scripts = name_scripts(name)
    if len(scripts) <= 1 or any(scripts <= mix for mix in _SCRIPT_MIXES):
        return None
    return f"mixes letters of the scripts {', '.join(sorted(s.title() for s in scripts))}, which makes it look like another name; write it in one script"


@lru_cache(maxsize=1)
def _confusable_prototypes() -> dict[str, str]:
    """Each confusable character mapped to one representative of its look-alike class (ASCII where there is one).

    The classes join the single-character pairs of Unicode's confusables data (as shipped by
    ``confusable_homoglyphs``): ``l``, ``1``, ``I``, ``|`` and Cyrillic ``І`` are one class. Pairs of
    a character with a sequence (``m`` and ``rn``) are left out: names differing that way stay distinct.
    """
    from confusable_homoglyphs.confusables import confusables_data

    parent: dict[str, str] = {}

    def root(char: str) -> str:
        while parent.setdefault(char, char) != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    for char, homoglyphs in confusables_data.items():
        for homoglyph in homoglyphs:
            other = homoglyph["c"].strip("\u200e\u200f")
            if len(char) == 1 and len(other) == 1:
                first, second = root(char), root(other)
                if first != second:
                    parent[max(first, second)] = min(first, second)
    return {char: root(char) for char in parent}


def name_skeleton(name: str) -> str:
    """What a name looks like (after NFKC and spacing): two names with one skeleton read alike.

    Case is kept, as the reader sees it: ``VISION LAB`` and ``VISI0N LAB`` share a skeleton,
    ``vision lab`` and ``visi0n lab`` do not (a lower-case ``o`` and a zero look different).
    """
    prototypes = _confusable_prototypes()
    return "".join(prototypes.get(char, char) for char in " ".join(unicodedata.normalize("NFKC", name).split()))


def team_slug(normalised_name: str) -> str:
    """The readable part of a team id: ASCII letters and digits joined by '-', at most 40 characters."""
    ascii_name = unicodedata.normalize("NFKD", normalised_name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    if len(slug) > 40:
        slug = slug[:40].rsplit("-", 1)[0] if "-" in slug[:40] else slug[:40]
    if len(slug) < 2:  # a name in a script without ASCII letters: fall back to a digest of it
        slug = "team-" + hashlib.sha256(normalised_name.encode("utf-8")).hexdigest()[:8]
    return slug


def load_team(ctx: CampaignContext, team_id: str) -> dict[str, Any] | None:
    key = ctx.layout.team_record(team_id)
    return ctx.store.get_json(key) if ctx.store.head(key) is not None else None


class TeamRecordError(RuntimeError):
    """A team record in the store cannot be read; the message names the object and how to fix it."""


def read_team_records(ctx: CampaignContext) -> tuple[list[dict[str, Any]], list[str]]:
    """Every readable team record in team-id order, and one problem per record that cannot be read."""
    teams: list[dict[str, Any]] = []
    problems: list[str] = []
    for info in ctx.store.list_objects(ctx.layout.registrations_teams()):
        if not info.key.endswith(".json"):
            continue
        try:
            record = ctx.store.get_json(info.key)
        except ValueError as exc:  # not JSON, not UTF-8
            problems.append(f"{info.key}: not a readable team record ({exc}); repair it or remove it")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("team_id"), str) or not isinstance(record.get("team_name"), str):
            problems.append(f"{info.key}: not a team record (a JSON object with team_id and team_name); repair it or remove it")
            continue
        teams.append(record)
    return teams, problems


def all_teams(ctx: CampaignContext) -> list[dict[str, Any]]:
    """Every team record, in team-id order; :class:`TeamRecordError` names any that cannot be read."""
    teams, problems = read_team_records(ctx)
    if problems:
        raise TeamRecordError(f"{len(problems)} team record(s) cannot be read:\n  " + "\n  ".join(problems))
    return teams


@dataclass
class TeamDirectory:
    """The registered teams as an intake needs them: by name, by the look of their names, by agreement file.

    Read once, when the first document needs it (an intake of an empty inbox reads nothing), and
    kept current as the intake records teams, so an intake of n documents reads each record once.
    Records that cannot be read are left out and listed in ``unreadable``.
    """

    ctx: CampaignContext
    unreadable: list[str] = field(default_factory=list)
    _by_id: dict[str, dict[str, Any]] | None = None
    _by_name: dict[str, set[str]] = field(default_factory=dict)
    _by_look: dict[str, set[str]] = field(default_factory=dict)
    _by_agreement: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def _teams(self) -> dict[str, dict[str, Any]]:
        if self._by_id is None:
            records, self.unreadable = read_team_records(self.ctx)
            self._by_id = {}
            for record in records:
                self.remember(record)
        return self._by_id

    def remember(self, team: dict[str, Any]) -> None:
        """Add or update a team (after the intake wrote its record)."""
        teams = self._teams()
        team_id = team["team_id"]
        previous = teams.get(team_id)
        if previous is not None:
            self._index(previous, set.discard)
        teams[team_id] = team
        self._index(team, set.add)

    def _index(self, team: dict[str, Any], change) -> None:
        team_id = team["team_id"]
        change(self._by_name.setdefault(normalise_team_name(team["team_name"]), set()), team_id)
        for look in _looks(team["team_name"]):
            change(self._by_look.setdefault(look, set()), team_id)
        for task_id, digest in (team.get("agreement_sha256") or {}).items():
            change(self._by_agreement.setdefault(digest, set()), (team_id, task_id))

    def lookalike(self, team_name: str) -> dict[str, Any] | None:
        """A team whose name reads like ``team_name`` without being the same name (case, width and spacing aside)."""
        teams = self._teams()
        same_name = self._by_name.get(normalise_team_name(team_name), set())
        candidates = sorted(set().union(*(self._by_look.get(look, set()) for look in _looks(team_name))) - same_name)
        return teams[candidates[0]] if candidates else None

    def namesakes(self, team_name: str) -> list[dict[str, Any]]:
        """Teams registered under the same name (case, width and spacing aside), in team-id order."""
        teams = self._teams()
        return [teams[team_id] for team_id in sorted(self._by_name.get(normalise_team_name(team_name), set()))]

    def recorded_from(self, document_id: str) -> list[str]:
        """Ids of the teams this intake knows whose record names the document (to tell after an error)."""
        return sorted(team_id for team_id, team in (self._by_id or {}).items() if any(r.get("document") == document_id for r in team.get("registrations", [])))

    def agreement_holders(self, digest: str, other_than: str) -> list[tuple[str, str]]:
        """(team id, task) of every other team that gave an agreement file with this sha256."""
        self._teams()
        return sorted(pair for pair in self._by_agreement.get(digest, set()) if pair[0] != other_than)


def teams_of_task(ctx: CampaignContext, task_id: str) -> list[dict[str, Any]]:
    return [team for team in all_teams(ctx) if task_id in team.get("tasks", [])]


def _looks(team_name: str) -> set[str]:
    """The skeletons a reader compares: the name as written, and in lower case (``VlSION`` reads as ``VISION``)."""
    return {name_skeleton(team_name), name_skeleton(unicodedata.normalize("NFKC", team_name).casefold())}


# --- agreements ----------------------------------------------------------------------------------


def approval_record(ctx: CampaignContext, team_id: str, task_id: str) -> dict[str, Any] | None:
    key = ctx.layout.approval_record(team_id, task_id)
    return ctx.store.get_json(key) if ctx.store.head(key) is not None else None


def agreement_status(ctx: CampaignContext, team: dict[str, Any], task_id: str) -> str:
    """``not required``, ``approved``, ``pending`` (no decision yet) or ``refused``."""
    if not ctx.campaign.task(task_id).requires_agreement:
        return NOT_REQUIRED
    decision = approval_record(ctx, team["team_id"], task_id)
    if decision is None:
        return PENDING
    return APPROVED if decision["approved"] else REFUSED


def may_receive_data(ctx: CampaignContext, team: dict[str, Any], task_id: str) -> bool:
    return task_id in team.get("tasks", []) and agreement_status(ctx, team, task_id) in (NOT_REQUIRED, APPROVED)


def approved_teams(ctx: CampaignContext, task_id: str) -> list[dict[str, Any]]:
    """Teams registered for the task that may get its data, in team-id order."""
    ctx.campaign.task(task_id)  # an unknown task id is an error, not an empty list
    return [team for team in teams_of_task(ctx, task_id) if may_receive_data(ctx, team, task_id)]


# --- notices -------------------------------------------------------------------------------------


@dataclass
class Notices:
    """E-mails of one stage run: each sent at most once, every recipient handled on its own.

    - an address the server refuses for good is recorded (its outbox marker says so, so no later
      try sends to it again) and the stage goes on;
    - a message whose delivery is unknown (the connection failed after the body was sent) is
      recorded, never sent again by itself, and stops the stage's sending like a connection failure;
    - a message another worker claimed a moment ago (two stages at once) is not sent here; it counts
      as not sent yet, so this run's retry checks that it went out (or sends it if the claim was released);
    - after the first connection-level failure nothing more is tried in this run: the remaining
      messages are listed as not sent, and :meth:`raise_if_failed` raises :class:`DeliveryError`, so
      the next try sends exactly those;
    - :meth:`raise_if_failed` first tells the organizers (of the campaign and of ``task_ids``) once
      about every undeliverable or unknown message of the run.
    """

    ctx: CampaignContext
    task_ids: tuple[str, ...] = ()
    sent: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    undeliverable: list[dict[str, str]] = field(default_factory=list)
    unknown: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    stopped_by: str | None = None

    def send(self, purpose: str, milestone: str, recipient: str, **context: Any) -> bool:
        """Render ``mail/<purpose>.txt.j2`` and send it once; False when it is not known to be delivered."""
        problem = {"purpose": purpose, "milestone": milestone, "recipient": str(recipient)}
        if self.stopped_by is not None:
            self.failed.append({**problem, "error": f"not tried: {self.stopped_by}", "deferred": "yes"})
            return False
        context.setdefault("reply_to", str(self.ctx.campaign.contact_email))
        context.setdefault("campaign", self.ctx.campaign)
        try:
            mail = render_mail(purpose, recipient, **context)
            result = self.ctx.outbox.send_once(purpose, milestone, mail)
        except MailError as error:
            self._record_failure(problem, error)
            return False
        return self._record(problem, result)

    def _record_failure(self, problem: dict[str, str], error: MailError) -> None:
        entry = {**problem, "error": str(error)}
        if error.kind == REFUSED:
            self.undeliverable.append(entry)
            return
        (self.unknown if error.kind == UNKNOWN else self.failed).append(entry)
        if error.connection_level:
            self.stopped_by = f"the SMTP server failed on an earlier message of this run ({problem['purpose']} to {problem['recipient']})"

    def _record(self, problem: dict[str, str], result: SendResult) -> bool:
        if result.sent:
            self.sent.append(result.key)
        elif result.status == UNDELIVERABLE:
            self.undeliverable.append({**problem, "error": result.detail or "refused by the server earlier"})
        elif result.status == UNKNOWN:
            self.unknown.append({**problem, "error": result.detail or "delivery unknown since an earlier try"})
        elif result.status == IN_PROGRESS:  # another worker holds the claim: a retry checks what became of it
            self.in_progress.append(result.key)
            self.failed.append({**problem, "error": f"being sent by another worker right now ({result.detail or 'claimed, no outcome recorded yet'}); "
                                                    "the next try finds it sent, or sends it if that worker gave up"})
        else:
            self.already_sent.append(result.key)
        return result.sent or result.status == SENT

    @property
    def delivered(self) -> bool:
        return not self.failed

    def summary(self) -> dict[str, Any]:
        return {
            "sent": len(self.sent),
            "already_sent": len(self.already_sent),
            "in_progress_elsewhere": len(self.in_progress),
            "undeliverable": list(self.undeliverable),
            "unknown": list(self.unknown),
            "failed": [item for item in self.failed if not item.get("deferred")],
            "not_tried": len([item for item in self.failed if item.get("deferred")]),
        }

    def tell_organizers(self, stage: str) -> bool:
        """E-mail the organizers the undeliverable and unknown messages of this run, once per set of problems."""
        problems = [dict(item, outcome=UNDELIVERABLE) for item in self.undeliverable] + [dict(item, outcome=UNKNOWN) for item in self.unknown]
        if not problems or self.stopped_by is not None:  # with the server down, the next try tells them
            return False
        fingerprint = hashlib.sha256(json.dumps(sorted((p["outcome"], p["purpose"], p["milestone"], p["recipient"]) for p in problems)).encode()).hexdigest()[:16]
        milestone = f"{_key_safe(stage)}.{fingerprint}"
        for item in problems:
            item["marker"] = self._marker(item)
        for organizer in organizer_addresses(self.ctx.campaign, self.task_ids):
            mail = render_mail("mail-problems", organizer, campaign=self.ctx.campaign, stage=stage, reply_to=str(self.ctx.campaign.contact_email),
                               undeliverable=[p for p in problems if p["outcome"] == UNDELIVERABLE],
                               unknown=[p for p in problems if p["outcome"] == UNKNOWN])
            try:
                self.ctx.outbox.send_once("mail-problems", milestone, mail)
            except MailError as error:
                if error.kind != REFUSED:  # a retry of the stage tells them (the teams' messages are not sent twice)
                    self.failed.append({"purpose": "mail-problems", "milestone": milestone, "recipient": organizer, "error": str(error)})
        return True

    def _marker(self, problem: dict[str, str]) -> str:
        try:
            return self.ctx.outbox.key(problem["purpose"], problem["milestone"], problem["recipient"])
        except (UnsafeKeyError, MailError):
            return ""

    def raise_if_failed(self, stage: str) -> None:
        """After every message was tried: tell the organizers of refused and unknown messages, then fail
        the stage if some could not be sent for a transient reason (a re-run sends exactly those)."""
        self.tell_organizers(stage)
        if not self.failed:
            return
        tried = [item for item in self.failed if not item.get("deferred")]
        deferred = len(self.failed) - len(tried)
        lines = [f"{stage}: {len(self.failed)} e-mail(s) not sent ({len(self.sent)} sent); run the task again once the SMTP server answers:"]
        lines += [f"  {item['purpose']} to {item['recipient']}: {item['error']}" for item in tried]
        if deferred:
            lines.append(f"  {deferred} more not tried after that failure: {self.stopped_by}")
        raise DeliveryError("\n".join(lines))


def _key_safe(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "stage"


def unique_addresses(addresses: Iterable[str]) -> list[str]:
    """Addresses in their first order, each once (case-insensitively)."""
    seen: set[str] = set()
    result: list[str] = []
    for address in addresses:
        lowered = str(address).strip().lower()
        if lowered and lowered not in seen:
            seen.add(lowered)
            result.append(str(address).strip())
    return result


def organizer_addresses(campaign: Campaign, task_ids: Iterable[str] = ()) -> list[str]:
    """The campaign's organizers, then the organizers of the given tasks."""
    people = list(campaign.organizers)
    for task_id in task_ids:
        people += list(campaign.task(task_id).organizers)
    return unique_addresses(str(person.email) for person in people)
