"""Write the hostile run files of this folder and their manifest, ``cases.yaml``.

Run ``PYTHONPATH=. .venv/bin/python tests/hostile/make_cases.py`` after changing a case. Each case
is a small file derived from a valid run of ``tests/validation/validation_fixtures.py`` (whose gold
every case is checked against) and the message its report must contain. Big hostile inputs (a
2 GB file, zip bombs) are not committed: the manifest lists them under ``generate`` and the test
builds them in a temporary folder.
"""
from __future__ import annotations

import json
import random
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "validation"))

import validation_fixtures as fx  # noqa: E402

CASES: list[dict] = []


def case(file: str, format_name: str, expect: str, data: bytes, why: str) -> None:
    (HERE / file).write_bytes(data)
    CASES.append({"file": file, "format": format_name, "gold": "standard", "expect": expect, "why": why})


def zipped(members: dict[str, bytes]) -> bytes:
    path = HERE / ".tmp.zip"
    fx.write_zip(path, members)
    data = path.read_bytes()
    path.unlink()
    return data


def zip_with(infos: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    path = HERE / ".tmp.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in infos:
            archive.writestr(info, data)
    data = path.read_bytes()
    path.unlink()
    return data


def info(name: str, **attributes) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, fx.FIXED_TIME)
    entry.compress_type = zipfile.ZIP_STORED
    for key, value in attributes.items():
        setattr(entry, key, value)
    return entry


def set_encrypted_flag(data: bytes) -> bytes:
    """Mark every member encrypted (zipfile cannot write encrypted archives itself)."""
    patched = bytearray(data)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = patched.find(signature)
        while start >= 0:
            patched[start + flag_offset] |= 0x1
            start = patched.find(signature, start + 4)
    return bytes(patched)


def concepts_zip(text: str | bytes) -> bytes:
    return zipped({"submission.csv": text.encode() if isinstance(text, str) else text})


def with_line(text: str, line: str, replace: int | None = None) -> str:
    lines = text.splitlines()
    if replace is None:
        lines.append(line)
    else:
        lines[replace] = line
    return "\n".join(lines) + "\n"


def fake_png(width: int, height: int) -> bytes:
    """A PNG signature and header chunk claiming a size, with no real pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_body = b"IDAT" + zlib.compress(b"\x00" * 16)
    idat = struct.pack(">I", len(idat_body) - 4) + idat_body + struct.pack(">I", zlib.crc32(idat_body))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat


def concept_cases() -> None:
    f = "caption-concepts-csv"
    valid = fx.concepts_csv()
    ids = fx.CONCEPT_IDS
    case("concepts-empty.zip", f, "the run file is empty (0 bytes)", b"", "an empty upload")
    case("concepts-not-a-zip.csv", f, "the run file is not a zip archive", valid.encode(), "the CSV uploaded without its zip")
    case("concepts-garbage.zip", f, "the run file is not a zip archive",
         random.Random(7).randbytes(2048), "binary garbage")
    case("concepts-two-csvs.zip", f, "the zip holds 2 matching files",
         zipped({"submission.csv": valid.encode(), "old/submission2.csv": valid.encode()}), "two CSVs in the zip")
    case("concepts-no-csv.zip", f, "the zip holds no matching file",
         zipped({"readme.txt": b"our run"}), "a zip without a CSV")
    case("concepts-dotdot.zip", f, 'member "../submission.csv" has an unsafe path',
         zip_with([(info("../submission.csv"), valid.encode())]), "path traversal with ..")
    case("concepts-absolute.zip", f, 'member "/tmp/submission.csv" has an unsafe path',
         zip_with([(info("/tmp/submission.csv"), valid.encode())]), "absolute member path")
    case("concepts-symlink.zip", f, 'member "submission.csv" is a symbolic link',
         zip_with([(info("submission.csv", create_system=3, external_attr=(0o120777 << 16)), b"/etc/passwd")]),
         "a symbolic link member")
    latin = with_line(valid, f"{ids[4]},C1306645 é", replace=5).encode("latin-1")
    offset = latin.index(b"\xe9")
    case("concepts-latin1.zip", f, f"not UTF-8 at byte offset {offset} (line 6): byte 0xE9", concepts_zip(latin),
         "Latin-1 bytes")
    case("concepts-tab-delimited.zip", f, "the file uses a tab as delimiter",
         concepts_zip(valid.replace(",", "\t")), "tab instead of comma")
    many = ";".join(f"C{n:07d}" for n in range(1, 102))
    case("concepts-101-cuis.zip", f, "101 concepts on this line, at most 100 allowed",
         concepts_zip(with_line(valid, f"{ids[3]},{many}", replace=4)), "over 100 concepts")
    case("concepts-repeated-cui.zip", f, 'repeated concept "c0040405" on this line',
         concepts_zip(with_line(valid, f"{ids[0]},C0040405;c0040405", replace=1)), "a concept twice, other case")
    case("concepts-bad-cui.zip", f, '"X0040405" is not a valid concept',
         concepts_zip(with_line(valid, f"{ids[0]},X0040405;C0817096", replace=1)), "a malformed CUI")
    case("concepts-empty-cui.zip", f, "empty concept (two",
         concepts_zip(with_line(valid, f"{ids[0]},C0040405;;C0817096", replace=1)), "two separators in a row")
    case("concepts-unknown-id.zip", f, 'unknown image id "ImageCLEFmedical_Caption_2025_test_999999"',
         concepts_zip(with_line(valid, "ImageCLEFmedical_Caption_2025_test_999999,C0040405")), "an id not in the test set")
    case("concepts-duplicate-id.zip", f, f'image id "{ids[1]}" appears more than once',
         concepts_zip(with_line(valid, f"{ids[1]},C0024485")), "an id twice")
    case("concepts-missing-id.zip", f, f'image id "{ids[4]}" is missing',
         concepts_zip("\n".join(valid.splitlines()[:-1]) + "\n"), "an id left out")
    case("concepts-extra-field.zip", f, "line 3 has 3 fields, expected 2 (ID,CUIs)",
         concepts_zip(with_line(valid, f"{ids[1]},C0024485,0.9", replace=2)), "a score column")
    case("concepts-formula-id.zip", f, "unknown image id \"'=cmd|' /C calc'!A0\"",
         concepts_zip(with_line(valid, "=cmd|' /C calc'!A0,C0040405")), "spreadsheet formula text, shown escaped")
    case("concepts-nul.zip", f, "the file looks like binary data",
         concepts_zip(valid.replace(ids[2], ids[2] + "\x00")), "a NUL byte")
    case("concepts-utf16.zip", f, "the file is UTF-16 encoded", concepts_zip(valid.encode("utf-16")), "UTF-16 text")
    encrypted = set_encrypted_flag(zip_with([(info("submission.csv"), valid.encode())]))
    case("concepts-encrypted.zip", f, 'member "submission.csv" is encrypted', encrypted, "password-protected member")
    corrupt = bytearray(zip_with([(info("submission.csv"), valid.encode())]))
    corrupt[corrupt.index(ids[0].encode()) + 3] ^= 0x20
    case("concepts-bad-crc.zip", f, 'member "submission.csv" is corrupt', bytes(corrupt), "CRC mismatch")
    case("concepts-unclosed-quote.zip", f, "a quoted field opened on this line is never closed",
         concepts_zip(with_line(valid, f'"{ids[1]},C0024485', replace=2)), "an opening quote never closed")
    case("concepts-header-only.zip", f, f'image id "{ids[0]}" is missing', concepts_zip("ID,CUIs\n"),
         "only the header")


def caption_cases() -> None:
    f = "caption-text-csv"
    valid = fx.captions_csv()
    ids = fx.CONCEPT_IDS

    def captions_zip(text):
        return zipped({"submission.csv": text.encode() if isinstance(text, str) else text})

    case("captions-unquoted-comma.zip", f, "line 2 has 3 fields, expected 2 (ID,Caption)",
         captions_zip(with_line(valid, f"{ids[0]},A chest CT, axial view", replace=1)), "a comma in an unquoted caption")
    case("captions-bad-quote.zip", f, "a quote inside a quoted field must be doubled",
         captions_zip(with_line(valid, f'{ids[0]},"He said "hi" there"', replace=1)), "an undoubled quote")
    case("captions-binary.zip", f, "the file looks like binary data", captions_zip(fx.png_bytes()),
         "an image uploaded as the CSV")
    case("captions-too-long.zip", f, "the caption has 10001 characters, at most 10000 allowed",
         captions_zip(with_line(valid, f'{ids[0]},"{"x" * 10001}"', replace=1)), "a runaway caption")


def gans_cases() -> None:
    f = "gans-detection-csv"
    valid = fx.gans_detection_csv()
    case("gans-header.csv", f, 'line 1 is a header ("id,label"); this format has no header line',
         ("id,label\n" + valid).encode(), "a header where none is allowed")
    case("gans-label-2.csv", f, 'label "2" is not one of 0, 1',
         with_line(valid, f"{fx.GANS_IDS[0]},2", replace=0).encode(), "a label outside 0/1")
    case("gans-semicolon.csv", f, "the file uses ';' as delimiter", valid.replace(",", ";").encode(),
         "the wrong delimiter")
    case("gans-empty-id.csv", f, "the image id is empty", with_line(valid, ",1").encode(), "an empty id")
    case("gans-blank.csv", f, "the file is empty (no data, only blanks)", b"  \n\r\n \n", "only whitespace")
    g = "gans-attribution-csv"
    attribution = fx.gans_attribution_csv()
    case("attribution-unknown-subset.csv", g, 'subset "t9" is not one of t1, t2, t3, t4, t5',
         with_line(attribution, f"{fx.GANS_IDS[0]},t9", replace=0).encode(), "a subset that does not exist")
    latin = with_line(attribution, f"{fx.GANS_IDS[1]},t2 ü", replace=1).encode("latin-1")
    offset = latin.index("ü".encode("latin-1"))
    case("attribution-latin1.csv", g, f"not UTF-8 at byte offset {offset}", latin, "Latin-1 bytes")


def vqa_cases() -> None:
    f = "vqa-gi-answers-json"
    valid = json.dumps(fx.vqa_answers(), indent=2)
    lines = valid.splitlines()
    lines[10] = lines[10].rstrip(",")
    case("vqa-invalid-json-line12.json", f, "invalid JSON at line 12", "\n".join(lines).encode(), "a missing comma")
    case("vqa-object-not-list.json", f, "the file holds a single JSON object", json.dumps(fx.vqa_answers()[0]).encode(),
         "an object instead of a list")
    records = fx.vqa_answers()
    del records[1]["answer"]
    case("vqa-missing-answer.json", f, 'has no field "answer"', json.dumps(records, indent=1).encode(), "a missing field")
    records = fx.vqa_answers()
    records[2]["answer"] = 42
    case("vqa-answer-number.json", f, 'field "answer" is an integer (42), expected a string',
         json.dumps(records, indent=1).encode(), "a number where text is expected")
    case("vqa-deep-nesting.json", f, "nested too deeply", ("[" * 5000 + "]" * 5000).encode(), "a nesting bomb")
    case("vqa-nan.json", f, "NaN is not valid JSON", valid.replace('"index": 1', '"index": NaN').encode(),
         "a NaN literal")
    records = fx.vqa_answers()
    records[2]["index"] = 1
    case("vqa-duplicate-index.json", f, 'question index "1" appears more than once',
         json.dumps(records, indent=1).encode(), "an index twice")
    case("vqa-trailing-garbage.json", f, "unexpected text after the closing ]", (valid + "\n{}").encode(),
         "text after the list")
    case("vqa-huge-number.json", f, "invalid JSON at line 1", ('[{"index": ' + "9" * 5000 + "}]").encode(),
         "an integer too long to convert")
    records = fx.vqa_answers()
    records[0]["answer"] = "ok"
    case("vqa-duplicate-key.json", f, 'field "answer" appears twice',
         json.dumps(records, indent=1).replace('"answer": "ok"', '"answer": "ok", "answer": "no"').encode(),
         "a key twice in one object")


def image_cases() -> None:
    f = "vqa-gi-images-zip"
    images = fx.prompt_images()
    broken = dict(images)
    broken["prompt0001_img0003.png"] = b"this is not an image"
    case("images-not-png.zip", f, 'member "prompt0001_img0003.png": not a readable PNG image', zipped(broken),
         "text renamed to .png")
    renamed = dict(images)
    renamed["prompt1_image3.png"] = renamed.pop("prompt0001_img0003.png")
    case("images-bad-name.zip", f, 'member "prompt1_image3.png" is not named prompt{NNNN}_img{NNNN}.png',
         zipped(renamed), "a badly named image")
    nine = {k: v for k, v in images.items() if k != "prompt0002_img0010.png"}
    case("images-nine.zip", f, 'prompt id "prompt0002" has 9 entries, exactly 10 are required', zipped(nine),
         "nine images for a prompt")
    unknown = {**images, "prompt0099_img0001.png": fx.png_bytes()}
    case("images-unknown-prompt.zip", f, 'unknown prompt id "prompt0099"', zipped(unknown), "a prompt not in the test set")
    huge = {**images, "prompt0001_img0003.png": fake_png(5000, 5000)}
    case("images-huge-dimensions.zip", f, "the image holds 25000000 pixels, over the limit of 16777216", zipped(huge),
         "a header claiming a huge image")


def mask_cases() -> None:
    f = "magic-masks-zip"
    items = list(fx.MASK_ITEMS.items())
    (item, (h, w)), (item2, (h2, w2)) = items

    def masks_with(replacement: dict[str, bytes]) -> bytes:
        members = fx.masks()
        members.update(replacement)
        return zipped(members)

    grey = fx.square_mask(h, w, 1)
    grey[-1, -1] = 2
    case("masks-not-binary.zip", f, "the mask is not binary: its pixel values include 0, 1, 2",
         masks_with({f"{item}_mask_mysys.tiff": fx.tiff_bytes(grey)}), "three pixel values")
    case("masks-wrong-size.zip", f, f'the mask is 7x4 pixels (width x height) but image "{item}" is {w}x{h}',
         masks_with({f"{item}_mask_mysys.tiff": fx.tiff_bytes(fx.square_mask(4, 7, 1))}), "a mask of the wrong size")
    rgb = np.stack([fx.square_mask(h, w, 255)] * 3, axis=-1)
    case("masks-rgb.zip", f, "a mask is one channel of height x width",
         masks_with({f"{item}_mask_mysys.tiff": fx.tiff_bytes(rgb)}), "an RGB mask")
    members = fx.masks()
    members[f"{item}.tiff"] = members.pop(f"{item}_mask_mysys.tiff")
    case("masks-bad-name.zip", f, f'member "{item}.tiff" is not named IMG_{{ENC}}_{{IMG}}_mask_{{SYS}}.tiff',
         zipped(members), "a mask without _mask_SYS")
    members = fx.masks()
    members[f"{item2}_mask_other.tiff"] = members.pop(f"{item2}_mask_mysys.tiff")
    case("masks-two-systems.zip", f, "one system per run", zipped(members), "masks of two systems")
    case("masks-not-tiff.zip", f, "not a readable TIFF image", masks_with({f"{item}_mask_mysys.tiff": fx.png_bytes()}),
         "a PNG named .tiff")


def closed_vqa_cases() -> None:
    f = "magic-closed-vqa-json"
    records = fx.closed_vqa()
    records[0]["CQID011-001"] = "2"
    case("closedvqa-option-string.json", f, 'field "option" is a string ("2"), expected an integer',
         json.dumps(records, indent=1).encode(), "an option index written as text")
    records = fx.closed_vqa()
    records[1]["CQID11-1"] = records[1].pop("CQID011-001")
    case("closedvqa-bad-key.json", f, 'key "CQID11-1" is not a question id', json.dumps(records, indent=1).encode(),
         "a malformed question id")
    records = fx.closed_vqa() + [{"encounter_id": "ENC09999", "CQID010-001": 1}]
    case("closedvqa-unknown-encounter.json", f, 'unknown encounter id "ENC09999"', json.dumps(records, indent=1).encode(),
         "an encounter not in the test set")
    records = fx.closed_vqa()
    del records[0]["CQID011-002"]
    case("closedvqa-missing-question.json", f, 'encounter_id "ENC00001" has no answer for question "CQID011-002"',
         json.dumps(records, indent=1).encode(), "a question left unanswered")


def touche_cases() -> None:
    f = "touche-results-jsonl"
    lines = fx.touche_lines()
    changed = [dict(r) for r in lines]
    changed[4]["rank"] = 6
    case("touche-rank-6.jsonl", f, "rank 6 is outside the range: must be from 1 to 5", fx.jsonl(changed).encode(),
         "a rank beyond 5")
    changed = [dict(r) for r in lines]
    changed[1]["image_id"] = changed[0]["image_id"]
    case("touche-repeated-image.jsonl", f, 'argument_id "arg001", image_id "I001" appears on another line too',
         fx.jsonl(changed).encode(), "an image twice for one argument")
    changed = [dict(r) for r in lines]
    changed[7]["method"] = "generation"
    case("touche-two-methods.jsonl", f, "one method per file", fx.jsonl(changed).encode(), "two methods in one file")
    text = fx.jsonl(lines).splitlines()
    text[2] = text[2][:-1]
    case("touche-bad-line.jsonl", f, "invalid JSON at line 3", ("\n".join(text) + "\n").encode(), "a truncated line")
    changed = [dict(r) for r in lines]
    changed[3]["image_id"] = "I999"
    case("touche-unknown-image.jsonl", f, 'image id "I999" is not in the collection', fx.jsonl(changed).encode(),
         "an image outside the collection")
    case("touche-missing-argument.jsonl", f, 'argument id "arg002" is missing', fx.jsonl(lines[:5]).encode(),
         "an argument left out")
    changed = [dict(r) for r in lines]
    changed[0]["rank"] = True
    case("touche-rank-bool.jsonl", f, 'field "rank" is true/false (true), expected an integer',
         fx.jsonl(changed).encode(), "a boolean rank")


def topicto_cases() -> None:
    f = "topicto-json"
    records = fx.topicto() + [fx.topicto()[0]]
    case("topicto-duplicate.json", f, 'id "cefc-1" appears more than once', json.dumps(records).encode(), "an id twice")
    records = fx.topicto()
    records[0]["hyp"] = ["je", "manger"]
    case("topicto-hyp-list.json", f, 'field "hyp" is a list', json.dumps(records).encode(), "terms as a list")
    records = fx.topicto() + [{"id": "cefc-99", "hyp": "x"}]
    case("topicto-unknown-id.json", f, 'unknown id "cefc-99"', json.dumps(records).encode(), "an id not in the test set")
    case("topicto-strings.json", f, "the element at line 1 is a string, expected an object",
         json.dumps(["cefc-1 je manger"]).encode(), "strings instead of objects")


def reasoning_cases() -> None:
    f = "multimodal-reasoning-json"
    records = fx.reasoning()
    records[0]["answer_key"] = "F"
    case("reasoning-answer-f.json", f, 'answer "F" is not one of A, B, C, D, E', json.dumps(records).encode(),
         "an answer outside A-E")
    records = fx.reasoning("english") + fx.reasoning("bulgarian")[:1]
    case("reasoning-partial.json", f, "submit the whole test set or exactly one language's part",
         json.dumps(records).encode(), "one language and a bit of another")
    records = fx.reasoning("english")
    records[1]["language"] = "bulgarian"
    case("reasoning-wrong-language.json", f, 'question id "q-en-2" is language "english" in the test set, the run says "bulgarian"',
         json.dumps(records).encode(), "a question tagged with the wrong language")
    records = fx.reasoning()
    records[2]["answer_key"] = "a"
    case("reasoning-lowercase.json", f, 'answer "a" is not one of A, B, C, D, E', json.dumps(records).encode(),
         "a lower-case answer")
    records = fx.reasoning("bulgarian")[:1]
    case("reasoning-one-language-partial.json", f, 'question id "q-bg-2" is missing', json.dumps(records).encode(),
         "part of one language")


GENERATED = [
    {"generate": "sparse-2gb", "format": "caption-concepts-csv", "gold": "standard",
     "expect": "over the size limit of 536870912 bytes", "why": "a 2 GB upload (sparse file, never read)"},
    {"generate": "sparse-2gb", "format": "touche-results-jsonl", "gold": "standard",
     "expect": "over the size limit of 536870912 bytes", "why": "a 2 GB JSON-lines upload"},
    {"generate": "zip-bomb", "format": "caption-concepts-csv", "gold": "standard",
     "expect": "over the compression ratio limit of 200", "why": "64 MiB of zeros compressed about 1000 times"},
    {"generate": "zip-declared-3gib", "format": "vqa-gi-images-zip", "gold": "standard",
     "expect": "over the uncompressed size limit of 2147483648 bytes", "why": "headers claiming 3 GiB uncompressed"},
]


def main() -> None:
    for old in HERE.iterdir():
        if old.suffix in {".zip", ".csv", ".json", ".jsonl"}:
            old.unlink()
    for make in (concept_cases, caption_cases, gans_cases, vqa_cases, image_cases, mask_cases, closed_vqa_cases,
                 touche_cases, topicto_cases, reasoning_cases):
        make()
    header = ("# Hostile runs: each must get exit 1 and a report containing `expect`. Written by make_cases.py\n"
              "# (do not edit by hand). `gold: standard` is the format's gold from validation_fixtures.py.\n")
    (HERE / "cases.yaml").write_text(header + yaml.safe_dump({"cases": CASES + GENERATED}, sort_keys=False,
                                                              allow_unicode=True, width=120), encoding="utf-8")
    print(f"{len(CASES)} files and {len(GENERATED)} generated cases written to {HERE}")


if __name__ == "__main__":
    main()
