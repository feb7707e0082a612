"""The twelve demo teams and their registration documents.

Eight "core" teams register on time for most tasks, have every agreement approved, and submit the
runs. The other four each exercise one way a registration goes wrong:

- ``agreement_not_approved`` (two teams): valid and on time, with signed agreements, but the
  organizer will not approve them, so they must never receive data;
- ``late``: arrives after registration closes;
- ``invalid``: has no ``contact_email``.

One core team carries ``after_dev_release``: it registers on time but after the development data
went out, so its confirmation must bring the earlier release's links.
Documents follow ``include/schemas/_registration.yaml``; agreements are keys relative to the
campaign (``registrations/agreements/<file>.pdf``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from include.campaign.config import Campaign
from devtools.demo.encoding import pdf_bytes

LATE = "late"
INVALID = "invalid"
AGREEMENT_NOT_APPROVED = "agreement_not_approved"
AFTER_DEV_RELEASE = "after_dev_release"


@dataclass(frozen=True)
class Team:
    name: str
    affiliation: str
    country: str
    contact_name: str
    mailbox: str  # the part before @example.org


CORE_TEAMS = (
    Team("Aurora Vision Lab", "University of Northfield", "RO", "Ana Popescu", "ana.popescu"),
    Team("BioLens", "Institute for Medical Informatics, Example University", "DE", "Jonas Weber", "j.weber"),
    Team("CaduceusAI", "Caduceus Health Research", "CH", "Léa Favre", "lea.favre"),
    Team("DermaSeg", "Universidad de Ejemplo", "ES", "Lucía García", "lgarcia"),
    Team("EndoInsight", "Fjordvik University Hospital", "NO", "Ola Nordmann", "ola"),
    Team("GlyphReaders", "Laboratoire d'Informatique de Grenoble-Exemple", "FR", "Camille Martin", "camille.martin"),
    Team("Helix Retrieval", "Politecnico di Esempio", "IT", "Marco Rossi", "m.rossi"),
    Team("Orbit NLP", "Example Institute of Technology", "US", "Maya Chen", "maya.chen"),
)
UNAPPROVED_TEAMS = (
    Team("Ibis Medical Imaging", "Ibis Diagnostics Pvt. Ltd.", "IN", "Priya Nair", "priya.nair"),
    Team("Jaguar Analytics", "Universidade Exemplo", "BR", "Rafael Souza", "rafael.souza"),
)
LATE_TEAM = Team("Kestrel Team", "Kestrel Labs", "GB", "Oliver Smith", "oliver.smith")
INVALID_TEAM = Team("Lotus Lab", "Lotus University of Example", "CN", "Wei Zhang", "wei.zhang")


class DemoRegistration(NamedTuple):
    """``(team_name, document, flags)``: the JSON document a team uploads and what is special about it."""

    team_name: str
    document: dict
    flags: frozenset[str]


def file_slug(text: str) -> str:
    """Letters and digits joined by '-', for file names (not the lifecycle's team id)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def registers_for(team_index: int, task_index: int) -> bool:
    """Whether core team ``team_index`` takes part in the campaign's task ``task_index``.

    Each task is left out by two of the eight core teams, so six core teams do every task.
    """
    return (team_index + task_index) % 4 != 0


def core_team_tasks(campaign: Campaign, team_index: int) -> list[str]:
    return [task.id for index, task in enumerate(campaign.tasks) if registers_for(team_index, index)]


def registrations(campaign: Campaign) -> tuple[list[DemoRegistration], dict[str, bytes]]:
    """The twelve registrations and the signed agreements (relative key -> PDF) they point to."""
    agreement_tasks = [task.id for task in campaign.tasks if task.requires_agreement]
    open_tasks = [task.id for task in campaign.tasks if not task.requires_agreement]
    plan: list[tuple[Team, list[str], frozenset[str]]] = []
    for index, team in enumerate(CORE_TEAMS):
        flags = frozenset({AFTER_DEV_RELEASE}) if index == len(CORE_TEAMS) - 1 else frozenset()
        plan.append((team, core_team_tasks(campaign, index), flags))
    for index, team in enumerate(UNAPPROVED_TEAMS):
        if agreement_tasks:
            plan.append((team, agreement_tasks[index::2][:2] or agreement_tasks[:1], frozenset({AGREEMENT_NOT_APPROVED})))
        else:  # nothing to approve in this campaign: an ordinary team that submits nothing
            plan.append((team, [campaign.tasks[0].id], frozenset()))
    plan.append((LATE_TEAM, (open_tasks or [t.id for t in campaign.tasks])[:2], frozenset({LATE})))
    plan.append((INVALID_TEAM, (open_tasks or [t.id for t in campaign.tasks])[-1:], frozenset({INVALID})))

    documents, agreements = [], {}
    for team, tasks, flags in plan:
        signed = {task: agreement_key(team, task) for task in tasks if task in agreement_tasks}
        agreements.update({key: agreement_pdf(campaign, team, task) for task, key in signed.items()})
        documents.append(DemoRegistration(team.name, registration_document(team, tasks, signed, flags), flags))
    return documents, agreements


def registration_document(team: Team, tasks: list[str], agreements: dict[str, str], flags: frozenset[str]) -> dict:
    document = {
        "team_name": team.name,
        "affiliation": team.affiliation,
        "country": team.country,
        "contact_name": team.contact_name,
        "contact_email": f"{team.mailbox}@example.org",
        "tasks": list(tasks),
    }
    if agreements:
        document["agreements"] = dict(agreements)
    if INVALID in flags:
        del document["contact_email"]  # the rule it breaks: contact_email is required
    return document


def agreement_key(team: Team, task_id: str) -> str:
    return f"registrations/agreements/{file_slug(team.name)}-{task_id}.pdf"


def agreement_pdf(campaign: Campaign, team: Team, task_id: str) -> bytes:
    return pdf_bytes(f"{campaign.name}: end-user agreement", [
        f"Task: {task_id}",
        f"Team: {team.name} ({team.affiliation}, {team.country})",
        f"Signed by: {team.contact_name} <{team.mailbox}@example.org>",
        "The team will use the data for research only and will not redistribute it.",
        "(Demo document generated by devtools/demo.)",
    ])
