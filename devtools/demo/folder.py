"""An organizer's own data for a rehearsal (``simulate CONFIG --data DIR``), read from a folder.

The folder mirrors the campaign bucket under the campaign id, as docs/organizers.md says::

    DIR/staging/<task>/<split>/…  + MANIFEST.json     uploaded as they are
    DIR/gold/<task>/<split>/…                         uploaded as they are
    DIR/registrations/agreements/<file>.pdf            uploaded as they are
    DIR/registrations/<name>.json                      registration documents, put in the inbox when registration opens
    DIR/runs/<task>/<name>/<run-01 …>                  the runs of the team that registered with registrations/<name>.json

Staging, gold and agreements are uploaded before the replay starts; registrations and runs are
returned as :class:`~devtools.demo.data.DemoData` for the replay to upload at their moments.
"""
from __future__ import annotations

import json
from pathlib import Path

from include.campaign.context import CampaignContext
from devtools.demo.data import DemoData, DemoRun
from devtools.demo.load import write_object
from devtools.demo.teams import DemoRegistration

UPLOADED_AS_IS = ("staging", "gold", "registrations/agreements")


class DataFolderError(ValueError):
    """The folder does not follow the layout of docs/organizers.md; the message says where."""


def read_data_folder(campaign_id: str, folder: Path) -> DemoData:
    """The registrations and runs of ``folder``; :class:`DataFolderError` names what does not fit."""
    folder = Path(folder)
    if not (folder / "staging").is_dir():
        raise DataFolderError(f"{folder}: no staging/ folder (see docs/organizers.md, Rehearse)")
    data = DemoData(campaign_id, seed=0)
    names: dict[str, str] = {}
    for path in sorted((folder / "registrations").glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataFolderError(f"{path}: not a JSON registration document: {error}") from None
        team_name = document.get("team_name") if isinstance(document, dict) else None
        data.registrations.append(DemoRegistration(str(team_name or path.stem), document, frozenset()))
        names[path.stem] = str(team_name or path.stem)
    runs_root = folder / "runs"
    for run_path in sorted(p for p in runs_root.rglob("*") if p.is_file()) if runs_root.is_dir() else []:
        parts = run_path.relative_to(runs_root).parts
        if len(parts) != 3:
            raise DataFolderError(f"{run_path}: runs go in runs/<task>/<registration name>/<run-01 …>")
        task_id, name, run_name = parts
        if name not in names:
            raise DataFolderError(f"{run_path}: no registrations/{name}.json for the team of this run")
        data.runs.setdefault(task_id, []).append(DemoRun(team=names[name], run_name=run_name, data=run_path.read_bytes(), task=task_id))
    return data


def upload_data_folder(ctx: CampaignContext, folder: Path) -> int:
    """Upload staging, gold and agreements of ``folder`` under the campaign id; the number of objects."""
    count = 0
    for part in UPLOADED_AS_IS:
        root = Path(folder) / part
        for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []:
            write_object(ctx, f"{ctx.layout.campaign}/{part}/{path.relative_to(root).as_posix()}", path.read_bytes())
            count += 1
    return count
