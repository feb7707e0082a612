"""Turning a run file's bytes into text, or saying exactly which byte is wrong.

UTF-8 is required. A UTF-8 byte-order mark is accepted and dropped; line ends (LF or CRLF) are
left to the parsers. Other encodings are refused with the offset of the first offending byte.
"""
from __future__ import annotations

import codecs

from include.campaign.validation.findings import Example, Findings, StopValidation

ENCODING_RULE = "encoding.utf-8"
ENCODING_DESCRIPTION = "the file must be UTF-8 text"
# Bytes that never occur in text files, apart from tab, LF, CR and form feed.
CONTROL_BYTES = bytes(range(0, 32)).translate(None, b"\t\n\r\f")
BINARY_SAMPLE = 4096


def line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _stop(findings: Findings, file: str, rule: str, description: str, message: str, line: int | None = None):
    findings.add(rule, description, Example(file=file, line=line, message=message))
    raise StopValidation


def looks_binary(sample: bytes) -> bool:
    """True when the start of a file is clearly not text: a NUL, or many control bytes."""
    if b"\x00" in sample:
        return True
    controls = sum(sample.count(bytes([b])) for b in CONTROL_BYTES)
    return controls > len(sample) * 0.1


def decode_text(data: bytes, file: str, findings: Findings) -> str:
    """The file's text; records a finding and stops when it is empty, binary or not UTF-8."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        _stop(findings, file, ENCODING_RULE, ENCODING_DESCRIPTION,
              "the file is UTF-16 encoded (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    body = data[bom:]
    if not body.strip():
        _stop(findings, file, "file.empty", "the file must hold data", "the file is empty (no data, only blanks)")
    if looks_binary(body[:BINARY_SAMPLE]):
        _stop(findings, file, ENCODING_RULE, ENCODING_DESCRIPTION,
              "the file looks like binary data, not text (NUL or control bytes near the start)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        offset = error.start + bom
        bad = data[offset:offset + 1].hex().upper()
        _stop(findings, file, ENCODING_RULE, ENCODING_DESCRIPTION,
              f"not UTF-8 at byte offset {offset} (line {line_of_offset(data, offset)}): byte 0x{bad} "
              "cannot start or continue a UTF-8 character; Latin-1 or Windows-1252 text must be saved as UTF-8",
              line=line_of_offset(data, offset))
    nul = text.find("\x00")
    if nul >= 0:
        offset = len(text[:nul].encode("utf-8")) + bom
        _stop(findings, file, ENCODING_RULE, ENCODING_DESCRIPTION,
              f"NUL byte at byte offset {offset}: text files cannot hold NUL bytes",
              line=line_of_offset(data, offset))
    return text
