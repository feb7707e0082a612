"""Shared set-up for the scoring tests: a small campaign, gold in the store, collected runs, registered teams.

Everything goes through the real moto S3 server and the real validators and metrics; the helpers
only write the objects that the earlier stages (release, collection, registration) would write.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from html.parser import HTMLParser

from include.campaign import evaluation

CAMPAIGN_YAML = """
id: democlef
name: Demo CLEF 2025
lab: Demo lab
timezone: UTC
organizers:
  - {name: Olga Organizer, email: olga@example.org}
contact_email: olga@example.org
schedule:
  registration_opens: 2025-01-01
  registration_closes: 2025-03-01
  dev_data_release: 2025-01-10
  test_data_release: 2025-02-01
  run_deadline: 2025-03-10
  results_release: 2025-03-20
  working_notes_deadline: 2025-04-01
  notification: 2025-04-15
  camera_ready: 2025-04-30
  conference_start: 2025-09-01
  conference_end: 2025-09-04
tasks:
  - {id: caption-concept-detection, title: "Concept detection", run_format: caption-concepts-csv, metrics: [concept_f1, concept_f1_manual], runs_allowed: 5}
  - {id: gans-detection, title: "GANs & detection", run_format: gans-detection-csv, metrics: [gans_kappa, gans_accuracy, gans_f1], runs_allowed: 5}
  - {id: topicto, title: "ToPicto", run_format: topicto-json, metrics: [picto_er, picto_sacrebleu], runs_allowed: 5}
  - {id: caption-prediction, title: "Caption prediction", run_format: caption-text-csv, metrics: [caption_relevance, caption_rouge1], runs_allowed: 5}
"""

GANS_GOLD = {"1": 0, "2": 1, "3": 1, "4": 0, "5": 1, "6": 0, "7": 1, "8": 0}


# --- writing what earlier stages would have written ------------------------------------------------


def stage_gold(ctx, task_id: str, files: dict[str, bytes]) -> None:
    prefix = ctx.layout.gold(task_id, "test")
    for key in ctx.store.list_keys(prefix):
        ctx.store.delete(key)
    for name, data in files.items():
        ctx.store.put_bytes(prefix + name, data)


def collect(ctx, task_id: str, runs: dict[tuple[str, str], bytes]) -> list[dict]:
    """Frozen runs and the collection manifest, as run collection writes them."""
    entries = []
    for (team, run), data in sorted(runs.items()):
        key = ctx.layout.collected(task_id) + f"{team}/{run}"
        version = ctx.store.put_bytes(key, data)
        entries.append({"team": team, "run": run, "key": key, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "uploaded_at": "2025-03-10T12:00:00+00:00", "source_version": version})
    ctx.store.put_json(ctx.layout.collection_manifest(task_id), {"task": task_id, "deadline": "2025-03-10T23:59:59+00:00",
                                                               "collected": entries, "late": [], "refused": [], "dropped_over_limit": []})
    return entries


def register(ctx, team: str, email: str, name: str | None = None) -> None:
    ctx.store.put_json(ctx.layout.team_record(team), {"team_id": team, "team_name": name or team.upper(), "contact_email": email,
                                                      "contact_name": f"Contact of {team}", "tasks": []})


def score_task(ctx, task_id: str, reason: str = "runs collected", by: str = "asset runs/test", teams=None, runs=None) -> dict:
    """What the scoring DAG does: plan, allocate, score each run, finalize."""
    items = evaluation.plan(ctx, task_id, teams, runs)
    version = evaluation.new_version(ctx, task_id, reason, by)
    summaries = [evaluation.score_one(ctx, task_id, version, item) for item in items]
    return evaluation.finalize(ctx, task_id, version, summaries, reason, by)


# --- run and gold files ----------------------------------------------------------------------------


def gans_gold(labels: dict[str, int] = GANS_GOLD) -> dict[str, bytes]:
    return {"labels.csv": ("id,label\n" + "".join(f"{i},{v}\n" for i, v in labels.items())).encode()}


def gans_run(labels: dict[str, object]) -> bytes:
    return "".join(f"{i},{v}\n" for i, v in labels.items()).encode()


def concepts_gold(concepts: dict[str, list[str]], manual: dict[str, list[str]]) -> dict[str, bytes]:
    def table(rows):
        return ("ID,CUIs\n" + "".join(f"{i},{';'.join(c)}\n" for i, c in rows.items())).encode()

    return {"concepts.csv": table(concepts), "concepts_manual.csv": table(manual)}


def concepts_run(rows: dict[str, list[str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("submission.csv", "".join(f"{i},{';'.join(c)}\n" for i, c in rows.items()))
    return buffer.getvalue()


def captions_run(rows: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("submission.csv", "ID,Caption\n" + "".join(f"{i},{c}\n" for i, c in rows.items()))
    return buffer.getvalue()


def topicto_json(rows: dict[str, str], key: str) -> bytes:
    return json.dumps([{"id": i, key: text} for i, text in rows.items()]).encode()


# --- reading the four leaderboard exports back -------------------------------------------------------

LATEX_TEXT = {r"\textbackslash{}": "\\", r"\&": "&", r"\%": "%", r"\$": "$", r"\#": "#", r"\_": "_", r"\{": "{", r"\}": "}",
              r"\textasciitilde{}": "~", r"\textasciicircum{}": "^", r"\textless{}": "<", r"\textgreater{}": ">", r"\textbar{}": "|"}


def shown(value) -> str:
    """How a value should appear once rounded for display: 4 decimals, or n/c."""
    return "n/c" if value is None else f"{float(value):.4f}"


def rows_from_csv(text: str) -> list[tuple]:
    reader = csv.DictReader(text.splitlines())
    metrics = [c for c in reader.fieldnames if c not in ("rank", "team", "run", "status", "note", "coverage", "ci_low", "ci_high", "group", "p_vs_best")]
    out = []
    for row in reader:
        if row["status"] == "invalid":
            continue
        values = tuple("n/c" if row[m] == "n/c" else shown(row[m]) for m in metrics)
        out.append((int(row["rank"]) if row["rank"] else None, row["team"], row["run"], values))
    return out


def rows_from_json(text: str) -> list[tuple]:
    board = json.loads(text)
    names = [m["name"] for m in board["metrics"]]
    return [(r["rank"], r["team"], r["run"], tuple(shown(r["metrics"][n]) for n in names)) for r in board["rows"] if r["status"] != "invalid"]


class TableReader(HTMLParser):
    """Collects the text of every cell of every table, by table id, and counts elements by tag."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: dict[str, int] = {}
        self.cell_values: dict[str, list[list[str | None]]] = {}
        self._table = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table], self.cell_values[self._table] = [], []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
            self.cell_values[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
            self.cell_values[self._table][-1].append(attrs.get("data-value"))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def read_html(text: str) -> TableReader:
    reader = TableReader()
    reader.feed(text)
    return reader


def rows_from_html(text: str) -> list[tuple]:
    tables = read_html(text).tables
    header = tables["ranked"][0]
    metric_cells = [i for i, name in enumerate(header) if i >= 3 and not name.startswith("95 % CI") and name != "Group"]
    out = [(int(r[0]), r[1], r[2], tuple(r[i] for i in metric_cells)) for r in tables["ranked"][1:]]
    out += [(None, r[0], r[1], tuple(r[2:-1])) for r in tables.get("not-ranked", [[]])[1:]]
    return out


def latex_text(cell: str) -> str:
    cell = re.sub(r"^\\textbf\{(.*)\}$", r"\1", cell.strip())
    return re.sub("|".join(re.escape(k) for k in LATEX_TEXT), lambda m: LATEX_TEXT[m.group()], cell)


def rows_from_latex(text: str) -> list[tuple]:
    head, body = text.split("\\midrule", 1)
    body = body.split("\\bottomrule", 1)[0]
    statistics_columns = 2 if "& 95\\,\\% CI & Group" in head else 0  # interval and group come last
    out = []
    for line in body.splitlines():
        line = line.strip()
        if not line.endswith("\\\\"):
            continue
        cells = [latex_text(c) for c in re.split(r"(?<!\\)&", line[:-2])]
        cells = cells[:len(cells) - statistics_columns]
        out.append((int(cells[0]) if cells[0] else None, cells[1], cells[2], tuple(cells[3:])))
    return out
