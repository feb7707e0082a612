"""Small gold folders and valid runs for every run format, written into temporary folders.

The hostile files in ``tests/hostile/`` are variants of these valid runs, made by
``tests/hostile/make_cases.py``; their ids refer to the gold written here, so keep the two in step.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

FIXED_TIME = (2025, 5, 10, 12, 0, 0)

CONCEPT_IDS = [f"ImageCLEFmedical_Caption_2025_test_{i:06d}" for i in range(1, 6)]
CONCEPTS = {
    CONCEPT_IDS[0]: ["C0040405", "C0817096"],
    CONCEPT_IDS[1]: ["C0024485"],
    CONCEPT_IDS[2]: ["C0032743", "C0037303", "C0000726"],
    CONCEPT_IDS[3]: [],
    CONCEPT_IDS[4]: ["C1306645"],
}
CAPTIONS = {i: f"CT scan of the chest, slice {n}." for n, i in enumerate(CONCEPT_IDS, start=1)}
GANS_IDS = [f"generated_{i:04d}" for i in range(1, 7)]
SUBSETS = ["t1", "t2", "t3", "t4", "t5"]
VQA_ANSWERS = [
    {"index": 1, "img_id": "clb0lbwzadmbo0736pvz6ejoh", "question": "Are there any polyps?", "answer": "Yes, one polyp."},
    {"index": 2, "img_id": "clb0lbwzadmbo0736pvz6ejoh", "question": "What color is the mucosa?", "answer": "Pink."},
    {"index": 3, "img_id": "cl8k2u1pm1dxw0832h4f2gdhm", "question": "How many instruments?", "answer": "None."},
]
PROMPT_IDS = ["prompt0001", "prompt0002"]
IMAGES_PER_PROMPT = 10
MASK_ITEMS = {"IMG_ENC00001_00001": (4, 6), "IMG_ENC00002_00001": (5, 3)}  # item -> (height, width)
CLOSED_VQA = [
    {"encounter_id": "ENC00001", "CQID010-001": 0, "CQID011-001": 2, "CQID011-002": 4},
    {"encounter_id": "ENC00002", "CQID010-001": 1, "CQID011-001": 3, "CQID011-002": 5},
]
ARGUMENTS = ["arg001", "arg002"]
COLLECTION = [f"I{n:03d}" for n in range(1, 13)]
TOPICTO = [{"id": "cefc-1", "ref": "je manger pomme"}, {"id": "cefc-2", "ref": "il aller école"},
           {"id": "cefc-3", "ref": "nous jouer"}]
REASONING = [
    {"id": "q-en-1", "answer_key": "A", "language": "english"},
    {"id": "q-en-2", "answer_key": "C", "language": "english"},
    {"id": "q-bg-1", "answer_key": "B", "language": "bulgarian"},
    {"id": "q-bg-2", "answer_key": "E", "language": "bulgarian"},
    {"id": "q-hr-1", "answer_key": "D", "language": "croatian"},
]


def png_bytes(width: int = 8, height: int = 8, shade: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 100, 150)).save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels)
    return buffer.getvalue()


def square_mask(height: int, width: int, value: int = 255) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[: height // 2, : width // 2] = value
    return mask


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return path


def write_gold(format_name: str, folder: Path) -> Path:
    """Write the gold folder of ``format_name`` into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    GOLD_WRITERS[format_name](folder)
    return folder


def _csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def _gold_concepts(folder: Path) -> None:
    _csv(folder / "concepts.csv", "ID,CUIs", [f"{i},{';'.join(c)}" for i, c in CONCEPTS.items()])
    manual = {"C0040405", "C0024485", "C0032743", "C1306645"}
    _csv(folder / "concepts_manual.csv", "ID,CUIs", [f"{i},{';'.join(x for x in c if x in manual)}" for i, c in CONCEPTS.items()])


def _gold_captions(folder: Path) -> None:
    _csv(folder / "captions.csv", "ID,Caption", [f'{i},"{c}"' for i, c in CAPTIONS.items()])


def _gold_gans_detection(folder: Path) -> None:
    _csv(folder / "labels.csv", "id,label", [f"{i},{n % 2}" for n, i in enumerate(GANS_IDS)])


def _gold_gans_attribution(folder: Path) -> None:
    _csv(folder / "subsets.csv", "id,subset", [f"{i},{SUBSETS[n % 5]}" for n, i in enumerate(GANS_IDS)])


def _gold_vqa_answers(folder: Path) -> None:
    (folder / "answers.json").write_text(json.dumps(VQA_ANSWERS, indent=1), encoding="utf-8")


def _gold_vqa_images(folder: Path) -> None:
    _csv(folder / "prompts.csv", "prompt_id,prompt", [f'{p},"A colonoscopy image with a polyp, view {n}"'
                                                      for n, p in enumerate(PROMPT_IDS)])
    (folder / "real").mkdir(exist_ok=True)
    for n in range(3):
        (folder / "real" / f"real{n:03d}.png").write_bytes(png_bytes(shade=40 * n))
    mapping = {str(number): [f"real{n:03d}" for n in range(3)] for number in range(1, len(PROMPT_IDS) + 1)}
    (folder / "real_mapping.json").write_text(json.dumps(mapping, indent=1), encoding="utf-8")


def _gold_masks(folder: Path) -> None:
    (folder / "masks").mkdir(exist_ok=True)
    for item, (height, width) in MASK_ITEMS.items():
        for annotator in ("ann0", "ann1", "ann2"):
            tifffile.imwrite(folder / "masks" / f"{item}_mask_{annotator}.tiff", square_mask(height, width, 1))


def _gold_closed_vqa(folder: Path) -> None:
    (folder / "closed_vqa.json").write_text(json.dumps(CLOSED_VQA, indent=1), encoding="utf-8")


def _gold_touche(folder: Path) -> None:
    rows = [f"{a},{i},{ann},{aspect},{(n + k) % 3}" for n, a in enumerate(ARGUMENTS) for k, i in enumerate(COLLECTION[:6])
            for ann in ("a1", "a2") for aspect in ("relevance", "stance")]
    _csv(folder / "judgments.csv", "argument_id,image_id,annotator,aspect,value", rows)
    _csv(folder / "arguments.csv", "argument_id", ARGUMENTS)
    (folder / "images.txt").write_text("\n".join(COLLECTION) + "\n", encoding="utf-8")


def _gold_topicto(folder: Path) -> None:
    (folder / "references.json").write_text(json.dumps(TOPICTO, ensure_ascii=False), encoding="utf-8")


def _gold_reasoning(folder: Path) -> None:
    (folder / "answers.json").write_text(json.dumps(REASONING), encoding="utf-8")


GOLD_WRITERS = {
    "caption-concepts-csv": _gold_concepts,
    "caption-text-csv": _gold_captions,
    "gans-detection-csv": _gold_gans_detection,
    "gans-attribution-csv": _gold_gans_attribution,
    "vqa-gi-answers-json": _gold_vqa_answers,
    "vqa-gi-images-zip": _gold_vqa_images,
    "magic-masks-zip": _gold_masks,
    "magic-closed-vqa-json": _gold_closed_vqa,
    "touche-results-jsonl": _gold_touche,
    "topicto-json": _gold_topicto,
    "multimodal-reasoning-json": _gold_reasoning,
}

# ---- valid runs, as bytes or member dicts, so hostile variants can start from them ----


def concepts_csv() -> str:
    return "ID,CUIs\n" + "".join(f"{i},{';'.join(c)}\n" for i, c in CONCEPTS.items())


def captions_csv() -> str:
    return "ID,Caption\n" + "".join(f'{i},"A chest CT, axial view {n}."\n' for n, i in enumerate(CONCEPT_IDS))


def gans_detection_csv() -> str:
    return "".join(f"{i},{n % 2}\n" for n, i in enumerate(GANS_IDS))


def gans_attribution_csv() -> str:
    return "".join(f"{i},{SUBSETS[(n + 1) % 5]}\n" for n, i in enumerate(GANS_IDS))


def vqa_answers() -> list[dict]:
    return [{**a, "answer": "A guess."} for a in VQA_ANSWERS]


def prompt_images() -> dict[str, bytes]:
    return {f"{p}_img{n:04d}.png": png_bytes(shade=n) for p in PROMPT_IDS for n in range(1, IMAGES_PER_PROMPT + 1)}


def masks(system: str = "mysys") -> dict[str, bytes]:
    return {f"{item}_mask_{system}.tiff": tiff_bytes(square_mask(h, w, 1)) for item, (h, w) in MASK_ITEMS.items()}


def closed_vqa() -> list[dict]:
    return [{**record, "CQID010-001": 0} for record in CLOSED_VQA]


def touche_lines(method: str = "retrieval") -> list[dict]:
    return [{"argument_id": a, "method": method, "image_id": COLLECTION[n * 5 + k], "rank": k + 1, "tag": "team-run-1"}
            for n, a in enumerate(ARGUMENTS) for k in range(5)]


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def topicto() -> list[dict]:
    return [{"id": r["id"], "hyp": r["ref"]} for r in TOPICTO[:2]]


def reasoning(language: str | None = None) -> list[dict]:
    return [{"id": r["id"], "answer_key": "A", "language": r["language"]} for r in REASONING
            if language is None or r["language"] == language]


def write_valid_run(format_name: str, folder: Path) -> Path:
    """Write a valid run of ``format_name`` into ``folder``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "caption-concepts-csv": lambda: write_zip(folder / "run.zip", {"submission.csv": concepts_csv().encode()}),
        "caption-text-csv": lambda: write_zip(folder / "run.zip", {"submission.csv": captions_csv().encode()}),
        "gans-detection-csv": lambda: _text(folder / "run.csv", gans_detection_csv()),
        "gans-attribution-csv": lambda: _text(folder / "run.csv", gans_attribution_csv()),
        "vqa-gi-answers-json": lambda: _text(folder / "run.json", json.dumps(vqa_answers(), indent=2)),
        "vqa-gi-images-zip": lambda: write_zip(folder / "run.zip", prompt_images()),
        "magic-masks-zip": lambda: write_zip(folder / "run.zip", masks()),
        "magic-closed-vqa-json": lambda: _text(folder / "run.json", json.dumps(closed_vqa(), indent=2)),
        "touche-results-jsonl": lambda: _text(folder / "results.jsonl", jsonl(touche_lines())),
        "topicto-json": lambda: _text(folder / "run.json", json.dumps(topicto(), ensure_ascii=False)),
        "multimodal-reasoning-json": lambda: _text(folder / "run.json", json.dumps(reasoning())),
    }
    return writers[format_name]()


def _text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
