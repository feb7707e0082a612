"""Write a campaign's demo data to a folder, to look at it or to try the validator on it.

    python -m devtools.demo OUT [--campaign include/campaigns/imageclef2025.yaml] [--seed 2025]

OUT receives ``staging/<task>/<split>/`` (with ``MANIFEST.json``), ``gold/<task>/test/``,
``runs/<task>/<team>/<run>``, ``registrations/<team>.json`` (with their flags in ``_flags``) and
``registrations/agreements/``; ``runs/index.json`` says which run is late, invalid or over the limit.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from include.campaign.config import ConfigError, load_campaign
from devtools.demo.data import DEFAULT_SEED, build_demo, write_tree
from devtools.demo.load import manifest_bytes
from devtools.demo.teams import file_slug

DEFAULT_CAMPAIGN = "include/campaigns/imageclef2025.yaml"


def export(campaign_file: str, seed: int, out: Path) -> dict:
    demo = build_demo(load_campaign(campaign_file), seed)
    files: dict[str, bytes] = {}
    for (task, split), tree in demo.staging.items():
        files.update({f"staging/{task}/{split}/{path}": data for path, data in tree.items()})
        files[f"staging/{task}/{split}/MANIFEST.json"] = manifest_bytes(demo.manifests[(task, split)])
    for task, tree in demo.gold.items():
        files.update({f"gold/{task}/test/{path}": data for path, data in tree.items()})
    index = []
    for task, runs in demo.runs.items():
        for run in runs:
            path = f"runs/{task}/{file_slug(run.team)}/{run.run_name}"
            files[path] = run.data
            index.append({"path": path, "task": task, "team": run.team, "run": run.run_name, "role": run.role,
                          "late": run.late, "expect_valid": run.expect_valid, "over_limit": run.over_limit,
                          "broken_rule": run.broken_rule})
    files["runs/index.json"] = (json.dumps(index, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for name, document, flags in demo.registrations:
        record = {**document, "_flags": sorted(flags)}
        files[f"registrations/{file_slug(name)}.json"] = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    files.update(demo.agreements)
    write_tree(files, out)
    return {"files": len(files), "bytes": sum(len(data) for data in files.values()), "fingerprint": demo.fingerprint()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description="Write a campaign's demo data to a folder.")
    parser.add_argument("out", type=Path, help="folder to write into (created if needed)")
    parser.add_argument("--campaign", default=DEFAULT_CAMPAIGN, help=f"campaign file (default {DEFAULT_CAMPAIGN})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    try:
        summary = export(args.campaign, args.seed, args.out)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyError as error:  # a run format without a generator
        print(f"{args.campaign}: {error.args[0]}", file=sys.stderr)
        return 2
    print(f"wrote {summary['files']} files ({summary['bytes'] / 1024:.0f} KiB) to {args.out}; fingerprint {summary['fingerprint'][:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
