"""MEDIQA-MAGIC: lesion segmentation (``magic-masks-zip``) and closed VQA (``magic-closed-vqa-json``).

Segmentation: each test image (a tiny PNG) has two to four annotators' binary TIFF masks in the
gold (``masks/IMG_{ENC}_{IMG}_mask_{ANN}.tiff``, 0/1 uint8 as the organizers stage them); a run is a
zip of one 0/1 TIFF mask per image named ``IMG_{ENC}_{IMG}_mask_{SYS}.tiff``. The perfect run is
the annotators' majority vote (a pixel is on when at least ceil(n/2) annotators marked it); a wrong
mask is that vote shifted a few pixels.

Closed VQA: a run and the gold ``closed_vqa.json`` are JSON lists of one object per encounter,
``{"encounter_id": ..., "CQID011-001": option, ...}``. Multi-slot families hold one to two real
options and fill the other slots with the family's last option, "Not mentioned".
"""
from __future__ import annotations

import math
import random

import numpy as np

from devtools.demo.encoding import json_bytes, png_bytes, tiff_mask_bytes, zip_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial, tiny_picture

MASK_HEIGHT, MASK_WIDTH = 24, 32
IMAGES_PER_ENCOUNTER = 2

# (family, question, number of slots, options); the last option of each family is "Not mentioned".
FAMILIES = (
    ("CQID010", "How much of the body is affected?", 1, ("single spot", "limited area", "widespread", "Not mentioned")),
    ("CQID011", "Where is the affected area?", 3,
     ("head", "neck", "upper extremities", "lower extremities", "chest/abdomen", "back", "other", "Not mentioned")),
    ("CQID012", "How large are the affected areas?", 3, ("size of thumb nail", "size of palm", "larger area", "Not mentioned")),
    ("CQID015", "When did the patient first notice the issue?", 1,
     ("within hours", "within days", "within weeks", "within months", "over a year", "Not mentioned")),
)


def encounter_ids(split: str, count: int) -> list[str]:
    first = 101 if split == "dev" else 901
    return [f"ENC{number:05d}" for number in range(first, first + count)]


def ellipse(centre: tuple[float, float], radii: tuple[float, float]) -> np.ndarray:
    rows, cols = np.mgrid[0:MASK_HEIGHT, 0:MASK_WIDTH]
    return ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1.0


def annotator_masks(rng: random.Random) -> list[np.ndarray]:
    """Two to four annotators outlining one lesion, each a little differently."""
    centre = (rng.uniform(8, MASK_HEIGHT - 8), rng.uniform(9, MASK_WIDTH - 9))
    radii = (rng.uniform(3, 6), rng.uniform(4, 8))
    return [ellipse((centre[0] + rng.uniform(-1, 1), centre[1] + rng.uniform(-1, 1)),
                    (radii[0] + rng.uniform(-1, 1), radii[1] + rng.uniform(-1, 1)))
            for _ in range(rng.randint(2, 4))]


def majority(masks: list[np.ndarray]) -> np.ndarray:
    return np.sum(masks, axis=0) >= math.ceil(len(masks) / 2)


def skin_with_lesion(rng: random.Random, lesion: np.ndarray) -> np.ndarray:
    """A skin-coloured picture with a reddish lesion where the annotators outlined it."""
    picture = np.empty((MASK_HEIGHT, MASK_WIDTH, 3), dtype=np.int32)
    picture[...] = (rng.randrange(190, 235), rng.randrange(150, 190), rng.randrange(120, 160))
    picture[lesion] = (rng.randrange(150, 190), rng.randrange(50, 90), rng.randrange(50, 90))
    noise = np.array([[rng.randrange(-6, 7) for _ in range(MASK_WIDTH)] for _ in range(MASK_HEIGHT)])
    return np.clip(picture + noise[..., None], 0, 255).astype(np.uint8)


class MagicSegmentation(FormatGenerator):
    """Items are ``(image id, [annotator masks])``; a wrong answer shifts the majority mask."""

    run_format = "magic-masks-zip"
    test_count = 6
    dev_count = 4

    def split(self, rng, split, count):
        encounters = encounter_ids(split, -(-count // IMAGES_PER_ENCOUNTER))
        ids = [f"IMG_{enc}_{number:05d}" for enc in encounters for number in range(1, IMAGES_PER_ENCOUNTER + 1)][:count]
        items = [(item_id, annotator_masks(rng)) for item_id in ids]
        files = {f"images/{item_id}.png": png_bytes(skin_with_lesion(rng, majority(masks))) for item_id, masks in items}
        # Gold masks as the organizers stage them: uint8, 1 on the lesion, 0 elsewhere.
        labels = {f"masks/{item_id}_mask_ann{number}.tiff": tiff_mask_bytes(mask, on_value=1)
                  for item_id, masks in items for number, mask in enumerate(masks, start=1)}
        return SplitMaterial(items, files, labels)

    def predict(self, material, index, correct, rng):
        item_id, masks = material.items[index]
        mask = majority(masks)
        return item_id, mask if correct else np.roll(mask, (rng.choice((-3, 3)), rng.choice((-4, 4))), axis=(0, 1))

    def encode(self, material, answers, system, variant):
        # 0/1 uint8 masks as the task asks (0/255 is refused); the alternate variant writes bilevel
        # (1-bit) TIFFs, which read as 0/1 too.
        if variant == "alternate":
            return zip_bytes({f"{item_id}_mask_{system}.tiff": bilevel_tiff_bytes(mask) for item_id, mask in answers})
        return zip_bytes({f"{item_id}_mask_{system}.tiff": tiff_mask_bytes(mask, on_value=1) for item_id, mask in answers})

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        item_id, mask = answers[0]
        answers[0] = (item_id, mask[:16, :16])
        return InvalidRun(self.encode(material, answers, system, None),
                          f"the mask of {item_id} is 16x16 pixels, its image {MASK_WIDTH}x{MASK_HEIGHT}")


def bilevel_tiff_bytes(mask: np.ndarray) -> bytes:
    """A 1-bit TIFF of a bool mask."""
    import io

    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.asarray(mask, dtype=bool))
    return buffer.getvalue()


class MagicClosedVqa(FormatGenerator):
    """Items are wide objects (one per encounter); a wrong answer changes the options of some families."""

    run_format = "magic-closed-vqa-json"
    test_count = 8
    dev_count = 4

    def split(self, rng, split, count):
        encounters = encounter_ids(split, count)
        items = [self.answer_sheet(rng, encounter) for encounter in encounters]
        files = {f"images/IMG_{enc}_00001.png": png_bytes(tiny_picture(rng, MASK_HEIGHT, MASK_WIDTH)) for enc in encounters}
        files["closedquestions_definitions.json"] = json_bytes([
            {"qid": f"{family}-{slot:03d}", "question": question, "options": list(options)}
            for family, question, slots, options in FAMILIES for slot in range(1, slots + 1)])
        return SplitMaterial(items, files, {"closed_vqa.json": json_bytes(items)})

    @staticmethod
    def answer_sheet(rng: random.Random, encounter: str) -> dict:
        sheet: dict = {"encounter_id": encounter}
        for family, _, slots, options in FAMILIES:
            not_mentioned = len(options) - 1
            chosen = rng.sample(range(not_mentioned), min(slots, rng.randint(1, 2)))
            chosen += [not_mentioned] * (slots - len(chosen))
            sheet.update({f"{family}-{slot:03d}": option for slot, option in enumerate(chosen, start=1)})
        return sheet

    def predict(self, material, index, correct, rng):
        sheet = dict(material.items[index])
        if correct:
            return sheet
        for family, _, slots, options in rng.sample(FAMILIES, 2):
            first = f"{family}-001"
            sheet[first] = rng.choice([o for o in range(len(options) - 1) if o != sheet[first]])
        return sheet

    def encode(self, material, answers, system, variant):
        if variant == "alternate":  # keys in another order: a JSON object's key order carries no meaning
            answers = [dict(reversed(list(sheet.items()))) for sheet in answers]
        return json_bytes(answers)

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        answers[1] = {**answers[1], "CQID010-001": str(answers[1]["CQID010-001"])}
        return InvalidRun(json_bytes(answers),
                          f"encounter {answers[1]['encounter_id']} answers CQID010-001 with a string, not an option index")
