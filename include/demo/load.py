"""Put the demo's staged data, manifests, gold and signed agreements into the campaign's object store.

Keys come from the campaign's :class:`~include.campaign.layout.Layout`. An object that already holds
the same bytes (same MD5 ETag, which S3, MinIO and moto give single-part uploads) is left alone,
so loading twice adds no object version. Registrations and runs are not loaded here: the
simulation uploads them at the moments that make them early, on time or late.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from include.campaign.context import CampaignContext
from include.demo.data import DemoData

AGREEMENTS_FOLDER = "registrations/agreements/"
CONTENT_TYPES = {".png": "image/png", ".tiff": "image/tiff", ".tif": "image/tiff", ".csv": "text/csv",
                 ".json": "application/json", ".jsonl": "application/x-ndjson", ".txt": "text/plain",
                 ".pdf": "application/pdf"}


def load_demo(ctx: CampaignContext, demo: DemoData) -> dict[str, Any]:
    """Write every staged file, manifest, gold file and agreement; returns counts written and unchanged."""
    if demo.campaign_id != ctx.campaign.id:
        raise ValueError(f"the demo data was built for campaign {demo.campaign_id!r}, the context is {ctx.campaign.id!r}")
    layout = ctx.layout
    objects: list[tuple[str, bytes]] = []
    for (task, split), files in sorted(demo.staging.items()):
        prefix = layout.staging(task, split)
        objects += [(prefix + path, data) for path, data in sorted(files.items())]
        objects.append((layout.staging_manifest(task, split), manifest_bytes(demo.manifests[(task, split)])))
    for task, files in sorted(demo.gold.items()):
        objects += [(layout.gold(task) + path, data) for path, data in sorted(files.items())]
    # Registration documents name agreements relative to the campaign: registrations/agreements/<file>.
    objects += [(layout.agreements() + relative_key.removeprefix(AGREEMENTS_FOLDER), data)
                for relative_key, data in sorted(demo.agreements.items())]

    written = sum(put_unless_same(ctx, key, data) for key, data in objects)
    return {"objects": len(objects), "written": written, "unchanged": len(objects) - written,
            "bytes": sum(len(data) for _, data in objects)}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2) + "\n").encode("utf-8")


def put_unless_same(ctx: CampaignContext, key: str, data: bytes) -> bool:
    """Write ``data`` at ``key`` unless it is there already; True when written."""
    current = ctx.store.head(key)
    if current is not None and current.etag == hashlib.md5(data, usedforsecurity=False).hexdigest():
        return False
    ctx.store.put_bytes(key, data, content_type=content_type(key))
    return True


def content_type(key: str) -> str:
    suffix = key[key.rfind("."):] if "." in key.rsplit("/", 1)[-1] else ""
    return CONTENT_TYPES.get(suffix.lower(), "application/octet-stream")
