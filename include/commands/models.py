"""``models CONFIG``: every model the campaign's metrics need, whether it is in the model directory.

For each model: its folder under the model directory (``--model-dir``, else ``CLEF_MODEL_DIR``),
present or missing, its size on disk, the tasks and metrics that need it, and the exact command an
organizer runs on a machine connected to the hub to fetch it. Exit 0 when every model is present,
1 when one or more are missing (their metrics then report "not computed"), 2 for a broken campaign file.
"""
from __future__ import annotations

import argparse
import json

from include.commands._campaign_file import load_or_explain


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the models the campaign's metrics need and whether they are present")
    parser.add_argument("config", help="the campaign file (YAML)")
    parser.add_argument("--model-dir", dest="model_dir", help="the model directory (default: CLEF_MODEL_DIR)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def inventory(campaign, model_dir) -> list[dict]:
    """One entry per model the campaign's tasks need, in the order the tasks name them."""
    from include.models.catalog import model_spec, models_for_metrics
    from include.models.store import ModelDirectory

    directory = ModelDirectory.of(model_dir)
    entries: dict[str, dict] = {}
    for task in campaign.tasks:
        for name, metrics in models_for_metrics(task.metrics).items():
            entry = entries.setdefault(name, {"model": name, "tasks": [], "metrics": []})
            entry["tasks"].append(task.id)
            entry["metrics"] += [m for m in metrics if m not in entry["metrics"]]
    for name, entry in entries.items():
        spec = model_spec(name)
        entry.update({
            "library": spec.library, "purpose": spec.purpose,
            "folder": str(directory.root / name) if directory.root else None,
            "present": directory.present(name), "size_bytes": directory.size(name),
            "fetch": spec.fetch_command(directory.root),
        })
    return list(entries.values())


def render(entries: list[dict], model_dir) -> str:
    from include.models.store import human_size

    where = f"model directory: {model_dir}" if model_dir else "model directory: not set (set CLEF_MODEL_DIR or pass --model-dir)"
    lines = [where, f"{len(entries)} model(s) needed, {sum(e['present'] for e in entries)} present:"]
    for entry in entries:
        state = f"present, {human_size(entry['size_bytes'])}" if entry["present"] else "MISSING"
        lines += [
            f"- {entry['model']}: {state}",
            f"    library: {entry['library']}; for {entry['purpose']}",
            f"    tasks: {', '.join(entry['tasks'])}; metrics: {', '.join(entry['metrics'])}",
            f"    fetch: {entry['fetch']}",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from include.campaign.context import Settings

    campaign = load_or_explain(args.config)
    if campaign is None:
        return 2
    model_dir = args.model_dir or Settings.from_env().model_dir
    entries = inventory(campaign, model_dir)
    print(json.dumps({"model_dir": str(model_dir) if model_dir else None, "models": entries}, indent=2)
          if args.json else render(entries, model_dir))
    return 0 if all(entry["present"] for entry in entries) else 1
