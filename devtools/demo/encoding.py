"""Byte-exact writers for the demo files: the same input always gives the same bytes.

Every writer here avoids what would make two builds differ: zip members carry a fixed date,
JSON keys keep the order given, PNG and TIFF files carry no timestamps, CSV uses ``\\n`` line ends.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

# The earliest date a zip entry can carry; fixed so that archives do not depend on the clock.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG of an ``(h, w, 3)`` or ``(h, w)`` uint8 array (Pillow writes no time chunk)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_mask_bytes(mask: np.ndarray, on_value: int = 255) -> bytes:
    """A single-channel uint8 TIFF whose pixels are 0 and ``on_value``."""
    import tifffile

    buffer = io.BytesIO()
    pixels = np.where(np.asarray(mask, dtype=bool), on_value, 0).astype(np.uint8)
    tifffile.imwrite(buffer, pixels, photometric="minisblack")
    return buffer.getvalue()


def zip_bytes(members: Mapping[str, bytes]) -> bytes:
    """A deflated zip of ``members`` in the given order, every entry dated 1980-01-01."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def csv_bytes(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> bytes:
    """UTF-8 CSV, ``\\n`` line ends, fields quoted only when they need it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def json_bytes(value: Any) -> bytes:
    """Indented UTF-8 JSON with keys in the order given (participants' files look like this)."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def jsonl_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON object a line."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def text_lines_bytes(lines: Iterable[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def pdf_bytes(title: str, lines: Sequence[str]) -> bytes:
    """A one-page PDF 1.4 showing ``title`` and ``lines`` in Helvetica, with a correct xref table.

    Hand-written because no PDF library is in the environment and a signed-agreement stand-in
    needs only a few hundred bytes that any viewer opens.
    """
    text_ops = ["BT", "/F1 14 Tf", "72 760 Td", f"({_pdf_escape(title)}) Tj", "/F1 10 Tf"]
    for line in lines:
        text_ops += ["0 -16 Td", f"({_pdf_escape(line)}) Tj"]
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("latin-1", errors="replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
