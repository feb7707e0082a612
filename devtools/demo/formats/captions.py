"""ImageCLEFmedical Caption: concept detection (``caption-concepts-csv``) and caption prediction (``caption-text-csv``).

Both runs are zips holding ``submission.csv``. Test images are tiny PNGs under ``images/``; the gold
is ``concepts.csv`` + ``concepts_manual.csv`` (``ID,CUIs``, CUIs joined by ``;``) and ``captions.csv``
(``ID,Caption``), as in docs/format-contract.md; image-caption similarity reads the staged test
images (``images/<ID>.png``).
"""
from __future__ import annotations

import random

from devtools.demo.encoding import csv_bytes, zip_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial, tiny_png
from include.metrics.registry import MANUAL_CONCEPT_CUIS

# Every image has one imaging modality, all of them among the manually validated CUIs.
MODALITY_CUIS = ("C0040405", "C0024485", "C0041618", "C1306645", "C0002978")
OTHER_CUIS = tuple(c for c in MANUAL_CONCEPT_CUIS if c not in MODALITY_CUIS) + (
    "C0006104", "C0024109", "C0027651", "C0032227", "C0018787", "C0022646", "C0023884", "C0016658",
)

MODALITY_WORDS = ("Axial CT", "Coronal MRI", "Ultrasound", "Plain radiograph", "Angiography")
REGIONS = ("chest", "abdomen", "brain", "pelvis", "left knee", "lumbar spine")
FINDINGS = (
    "a 3 cm mass in the right upper lobe",
    "multiple small nodules",
    "free fluid, without signs of perforation",
    "no acute abnormality",
    "a 12 mm calcified lesion",
    "thickening of the wall, with surrounding fat stranding",
    "a fracture of the distal end",
)


def image_ids(split: str, count: int) -> list[str]:
    name = "valid" if split == "dev" else split
    return [f"ImageCLEFmedical_Caption_2025_{name}_{number:03d}" for number in range(1, count + 1)]


def image_files(rng: random.Random, ids: list[str]) -> dict[str, bytes]:
    return {f"images/{image_id}.png": tiny_png(rng) for image_id in ids}


def submission_zip(rows: list[list[str]], header: list[str] | None) -> bytes:
    return zip_bytes({"submission.csv": csv_bytes(rows, header)})


class ConceptDetection(FormatGenerator):
    """Items are ``(image id, [CUI, ...])``; a wrong answer keeps one true CUI and adds a false one."""

    run_format = "caption-concepts-csv"

    def split(self, rng, split, count):
        ids = image_ids(split, count)
        items = [(image_id, [rng.choice(MODALITY_CUIS), *rng.sample(OTHER_CUIS, rng.randint(1, 3))]) for image_id in ids]
        manual = set(MANUAL_CONCEPT_CUIS)
        labels = {
            "concepts.csv": csv_bytes([[i, ";".join(c)] for i, c in items], ["ID", "CUIs"]),
            "concepts_manual.csv": csv_bytes([[i, ";".join(x for x in c if x in manual)] for i, c in items], ["ID", "CUIs"]),
        }
        return SplitMaterial(items, image_files(rng, ids), labels)

    def predict(self, material, index, correct, rng):
        image_id, cuis = material.items[index]
        if correct:
            return image_id, list(cuis)
        wrong = rng.choice([c for c in OTHER_CUIS if c not in cuis])
        return image_id, [cuis[0], wrong]

    def encode(self, material, answers, system, variant):
        # The organizers' evaluator skips a first line whose first field contains "ID": show both.
        header = None if variant == "alternate" else ["ID", "CUIs"]
        return submission_zip([[i, ";".join(c)] for i, c in answers], header)

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        image_id, cuis = answers[2]
        answers[2] = (image_id, [*cuis, cuis[0]])
        return InvalidRun(self.encode(material, answers, system, None),
                          f"the concept {cuis[0]} appears twice on the line of image {image_id}")


class CaptionPrediction(FormatGenerator):
    """Items are ``(image id, caption)``; a wrong caption is another draw of the same templates."""

    run_format = "caption-text-csv"

    def split(self, rng, split, count):
        ids = image_ids(split, count)
        items = [(image_id, self.caption(rng)) for image_id in ids]
        labels = {"captions.csv": csv_bytes([list(item) for item in items], ["ID", "Caption"])}
        return SplitMaterial(items, image_files(rng, ids), labels)

    @staticmethod
    def caption(rng: random.Random) -> str:
        return f"{rng.choice(MODALITY_WORDS)} of the {rng.choice(REGIONS)} showing {rng.choice(FINDINGS)}."

    def predict(self, material, index, correct, rng):
        image_id, caption = material.items[index]
        if correct:
            return image_id, caption
        wrong = self.caption(rng)
        while wrong == caption:
            wrong = self.caption(rng)
        return image_id, wrong

    def encode(self, material, answers, system, variant):
        header = None if variant == "alternate" else ["ID", "Caption"]
        return submission_zip([list(answer) for answer in answers], header)

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        answers.append(answers[0])
        return InvalidRun(self.encode(material, answers, system, None),
                          f"the image id {answers[0][0]} appears twice (every test ID exactly once)")
