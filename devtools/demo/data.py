"""Deterministic demo data for a whole campaign: staged data, gold, registrations and runs, all in memory.

``build_demo(campaign, seed)`` returns a :class:`DemoData`; the same campaign and seed always give
the same bytes. For every task of the campaign (chosen by its run format) it holds:

- ``staging[(task, split)]``: the files organizers stage under ``staging/<task>/<split>/`` (tiny PNG
  images, TIFF masks, CSV and JSON files); the development split also carries its labels under
  ``labels/`` and one copy of the test gold under ``ground-truth/``, which its manifest marks as
  ground truth so the release must hold it back;
- ``manifests[(task, split)]``: each split's ``MANIFEST.json`` content;
- ``gold[task]``: the test gold, laid out as docs/format-contract.md says;
- ``runs[task]``: runs from the six core teams registered for the task, in upload order: a
  perfect one, a good one and its tie (same answers, other order and spelling), the good team's
  weaker second run (in multimodal reasoning it answers one language only), an invalid one
  followed by its corrected resubmission, a mediocre one, and a late one; in the task with the
  smallest run limit the mediocre team submits one run over the limit (its first run is the one
  the collection must drop, so upload in list order, at least a second apart: the store's times
  have one-second resolution);

and, for the campaign, twelve ``registrations`` (see :mod:`devtools.demo.teams`) and the signed
``agreements`` they name. ``load_demo(ctx, demo)`` writes staging, manifests, gold and agreements
to the object store; registrations and runs are uploaded by the simulation when their time comes.
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.campaign.config import Campaign, Task
from devtools.demo.formats import FormatGenerator, SplitMaterial, generator_for
from devtools.demo.teams import CORE_TEAMS, DemoRegistration, file_slug, registers_for, registrations

DEFAULT_SEED = 2025
GROUND_TRUTH_FOLDER = "ground-truth/"
DEV_LABELS_FOLDER = "labels/"

# Quality = share of test items a run answers right.
PERFECT, GOOD, WEAK, MEDIOCRE, RESUBMISSION, LATE_QUALITY = 1.0, 0.75, 0.35, 0.5, 0.6, 0.65
OVER_LIMIT_QUALITIES = (0.3, 0.5, 0.45, 0.55, 0.4, 0.6)
ROLES = ("perfect", "good", "tie", "mediocre", "invalid", "late")


@dataclass(frozen=True)
class DemoRun:
    """One run a team uploads. ``late`` runs go up after the deadline; ``over_limit`` marks the run
    the collection must drop (the team's earliest upload in a task where it exceeds its limit)."""

    team: str
    run_name: str
    data: bytes
    late: bool = False
    expect_valid: bool = True
    role: str = ""
    over_limit: bool = False
    broken_rule: str | None = None
    task: str = ""


@dataclass
class DemoData:
    campaign_id: str
    seed: int
    staging: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    manifests: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    gold: dict[str, dict[str, bytes]] = field(default_factory=dict)
    runs: dict[str, list[DemoRun]] = field(default_factory=dict)
    registrations: list[DemoRegistration] = field(default_factory=list)
    agreements: dict[str, bytes] = field(default_factory=dict)

    def total_bytes(self) -> int:
        """The size of every file, run and agreement together."""
        return sum(len(data) for _, data in self.all_files())

    def fingerprint(self) -> str:
        """A sha256 over every file's name and bytes: equal fingerprints mean equal demo data."""
        digest = hashlib.sha256()
        for name, data in self.all_files():
            digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).digest())
        for registration in self.registrations:
            digest.update(repr((registration.team_name, sorted(registration.document.items()), sorted(registration.flags))).encode("utf-8"))
        return digest.hexdigest()

    def all_files(self) -> list[tuple[str, bytes]]:
        """(name, bytes) of everything, named as under the campaign prefix of the object store."""
        files = [(f"staging/{task}/{split}/{path}", data) for (task, split), tree in sorted(self.staging.items()) for path, data in sorted(tree.items())]
        files += [(f"gold/{task}/test/{path}", data) for task, tree in sorted(self.gold.items()) for path, data in sorted(tree.items())]
        files += [(f"runs/{task}/{run.team}/{run.run_name}", run.data) for task, runs in sorted(self.runs.items()) for run in runs]
        files += sorted(self.agreements.items())
        return files


def build_demo(campaign: Campaign, seed: int = DEFAULT_SEED) -> DemoData:
    """Every task's data, gold and runs, and the campaign's registrations; deterministic in ``seed``."""
    demo = DemoData(campaign.id, seed)
    demo.registrations, demo.agreements = registrations(campaign)
    over_limit_task = min(campaign.tasks, key=lambda task: task.runs_allowed).id
    for task_index, task in enumerate(campaign.tasks):
        generator = generator_for(task.run_format)
        dev = generator.split(stream(seed, task.id, "dev"), "dev", generator.dev_count)
        test = generator.split(stream(seed, task.id, "test"), "test", generator.test_count)
        demo.gold[task.id] = dict(test.labels)
        demo.staging[(task.id, "test")] = dict(test.inputs)
        demo.staging[(task.id, "dev")], dev_ground_truth = development_files(dev, test)
        for split in ("dev", "test"):
            marked = dev_ground_truth if split == "dev" else set()
            demo.manifests[(task.id, split)] = manifest(demo.staging[(task.id, split)], marked)
        demo.runs[task.id] = task_runs(generator, test, task, task_index, seed, over_limit=task.id == over_limit_task)
    return demo


def stream(seed: int, *parts: str) -> random.Random:
    """An independent random stream per purpose; string seeds hash the same in every process."""
    return random.Random("|".join([str(seed), *parts]))


def development_files(dev: SplitMaterial, test: SplitMaterial) -> tuple[dict[str, bytes], set[str]]:
    """Development inputs and labels, plus one test-gold file that the manifest marks as ground truth."""
    files = dict(dev.inputs)
    files.update({DEV_LABELS_FOLDER + path: data for path, data in dev.labels.items()})
    gold_path = sorted(test.labels)[0]
    leaked = GROUND_TRUTH_FOLDER + gold_path.rsplit("/", 1)[-1]
    files[leaked] = test.labels[gold_path]
    return files, {leaked}


def manifest(files: dict[str, bytes], ground_truth: set[str]) -> dict[str, Any]:
    """``MANIFEST.json`` content: every staged file with its sha256 and size, sorted by path."""
    return {"files": [{"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "ground_truth": path in ground_truth}
                      for path, data in sorted(files.items())]}


def system_name(team: str, run_name: str) -> str:
    """The system name a run carries inside (Touché tag, MAGIC mask names): letters, digits, '.', '-'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", f"{file_slug(team)}.{run_name}")


def role_teams(task_index: int, eligible: list[str]) -> dict[str, str]:
    """Which team plays which role in a task; rotating with the task so that winners differ."""
    return {role: eligible[(position + task_index) % len(eligible)] for position, role in enumerate(ROLES)}


def task_runs(generator: FormatGenerator, test: SplitMaterial, task: Task, task_index: int, seed: int, *,
              over_limit: bool) -> list[DemoRun]:
    """The runs of one task in upload order (see the module docstring)."""
    eligible = [team.name for index, team in enumerate(CORE_TEAMS) if registers_for(index, task_index)]
    teams = role_teams(task_index, eligible)

    def make(role: str, team: str, run_name: str, quality: float, *, stream_name: str | None = None, reverse: bool = False,
             variant: str | None = None, **flags: Any) -> DemoRun:
        rng = stream(seed, task.id, "run", stream_name or f"{team}/{run_name}")
        data = generator.run(test, quality, rng, system_name(team, run_name), reverse=reverse, variant=variant)
        return DemoRun(team, run_name, data, role=role, task=task.id, **flags)

    good_stream = f"{teams['good']}/run-01"
    runs = [
        make("perfect", teams["perfect"], "run-01", PERFECT),
        make("good", teams["good"], "run-01", GOOD),
        make("tie", teams["tie"], "run-01", GOOD, stream_name=good_stream, reverse=True, variant="alternate"),
        make("weak", teams["good"], "run-02", WEAK, variant="one-language"),
    ]
    invalid = generator.invalid_run(test, stream(seed, task.id, "invalid"), system_name(teams["invalid"], "run-01"))
    runs.append(DemoRun(teams["invalid"], "run-01", invalid.data, expect_valid=False, role="invalid", broken_rule=invalid.rule, task=task.id))
    runs.append(make("resubmission", teams["invalid"], "run-02", RESUBMISSION))
    if over_limit:
        for number in range(1, task.runs_allowed + 2):
            quality = OVER_LIMIT_QUALITIES[(number - 1) % len(OVER_LIMIT_QUALITIES)]
            runs.append(make("over-limit" if number == 1 else "mediocre", teams["mediocre"], f"run-{number:02d}", quality, over_limit=number == 1))
    else:
        runs.append(make("mediocre", teams["mediocre"], "run-01", MEDIOCRE))
    runs.append(make("late", teams["late"], "run-01", LATE_QUALITY, late=True))
    return runs


def write_tree(files: dict[str, bytes], root: str | Path) -> Path:
    """Write ``{relative path: bytes}`` under ``root`` (for a gold folder a validator reads)."""
    root = Path(root)
    for path, data in files.items():
        target = (root / path).resolve()
        if not target.is_relative_to(root.resolve()):
            raise ValueError(f"{path!r} would be written outside {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root
