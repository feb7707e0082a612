"""ImageCLEFmedical GANs: detection (``gans-detection-csv``) and attribution (``gans-attribution-csv``).

Runs are bare CSVs without a header (``id,label`` and ``id,subset``); a zip holding the CSV is
accepted too, which the tie run uses. Test images are tiny PNGs; the gold is ``labels.csv`` and
``subsets.csv`` with a header.
"""
from __future__ import annotations

from devtools.demo.encoding import csv_bytes, zip_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial, tiny_png

SUBSETS = tuple(f"subset_{number}" for number in range(1, 6))


def generated_ids(split: str, count: int) -> list[str]:
    return [f"generated_{split}_{number:04d}" for number in range(1, count + 1)]


def bare_or_zipped_csv(rows: list[list[str]], variant: str | None) -> bytes:
    data = csv_bytes(rows)
    return zip_bytes({"run.csv": data}) if variant == "alternate" else data


class GansDetection(FormatGenerator):
    """Items are ``(image id, 0 or 1)``, half of each; a wrong answer flips the label."""

    run_format = "gans-detection-csv"
    test_count = 16

    def split(self, rng, split, count):
        ids = generated_ids(split, count)
        labels = [number % 2 for number in range(count)]
        rng.shuffle(labels)
        items = list(zip(ids, labels))
        files = {f"images/{image_id}.png": tiny_png(rng) for image_id in ids}
        return SplitMaterial(items, files, {"labels.csv": csv_bytes(items, ["id", "label"])})

    def predict(self, material, index, correct, rng):
        image_id, label = material.items[index]
        return image_id, label if correct else 1 - label

    def encode(self, material, answers, system, variant):
        return bare_or_zipped_csv([[i, str(label)] for i, label in answers], variant)

    def invalid_run(self, material, rng, system):
        answers = [[i, str(label)] for i, label in self.answers(material, 1.0, rng)]
        answers[3][1] = "2"
        return InvalidRun(csv_bytes(answers), f"label 2 for image {answers[3][0]} (a label is 0 or 1)")


class GansAttribution(FormatGenerator):
    """Items are ``(image id, subset)``, every subset three times; a wrong answer names another subset."""

    run_format = "gans-attribution-csv"
    test_count = 15
    dev_count = 5

    def split(self, rng, split, count):
        ids = generated_ids(split, count)
        subsets = [SUBSETS[number % len(SUBSETS)] for number in range(count)]
        rng.shuffle(subsets)
        items = list(zip(ids, subsets))
        files = {f"images/{image_id}.png": tiny_png(rng) for image_id in ids}
        return SplitMaterial(items, files, {"subsets.csv": csv_bytes(items, ["id", "subset"])})

    def predict(self, material, index, correct, rng):
        image_id, subset = material.items[index]
        return image_id, subset if correct else rng.choice([s for s in SUBSETS if s != subset])

    def encode(self, material, answers, system, variant):
        return bare_or_zipped_csv([list(answer) for answer in answers], variant)

    def invalid_run(self, material, rng, system):
        answers = [list(answer) for answer in self.answers(material, 1.0, rng)]
        answers[1][1] = "subset_9"
        return InvalidRun(csv_bytes(answers), f"subset_9 for image {answers[1][0]} is not one of the test subsets")
