"""ImageCLEF MultimodalReasoning (``multimodal-reasoning-json``): multiple-choice exam questions as images.

The test split stages one PNG per question and ``questions.json`` (``{id, image, language}``); a
run and the gold ``answers.json`` are JSON lists ``{id, answer_key, language}`` with keys A to E.
A run may answer the whole test set or exactly one language's part, which variant
``one-language`` produces.
"""
from __future__ import annotations

from devtools.demo.encoding import json_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial, tiny_png

LANGUAGES = ("English", "Bulgarian", "Spanish")
KEYS = ("A", "B", "C", "D", "E")


class MultimodalReasoning(FormatGenerator):
    """Items are ``{id, answer_key, language}``, the same number of questions per language."""

    run_format = "multimodal-reasoning-json"
    test_count = 18

    def split(self, rng, split, count):
        items = [{"id": f"mmr-{split}-{number:04d}", "answer_key": rng.choice(KEYS), "language": LANGUAGES[number % len(LANGUAGES)]}
                 for number in range(count)]
        files = {f"images/{item['id']}.png": tiny_png(rng, 20, 16) for item in items}
        files["questions.json"] = json_bytes([{"id": item["id"], "image": f"images/{item['id']}.png", "language": item["language"]}
                                              for item in items])
        return SplitMaterial(items, files, {"answers.json": json_bytes(items)})

    def predict(self, material, index, correct, rng):
        item = dict(material.items[index])
        if not correct:
            item["answer_key"] = rng.choice([key for key in KEYS if key != item["answer_key"]])
        return item

    def encode(self, material, answers, system, variant):
        if variant == "one-language":
            answers = [answer for answer in answers if answer["language"] == LANGUAGES[0]]
        return json_bytes(answers)

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        answers[5] = {**answers[5], "answer_key": "F"}
        return InvalidRun(json_bytes(answers), f"answer F for question {answers[5]['id']} (one of A to E)")
