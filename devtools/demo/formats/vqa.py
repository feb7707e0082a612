"""ImageCLEFmed MEDVQA-GI: answering (``vqa-gi-answers-json``) and image synthesis (``vqa-gi-images-zip``).

Answering: the test split stages colonoscopy-like PNGs and ``questions.json``; a run is the JSON
list ``{index, img_id, question, answer}``; the gold is ``answers.json``. Synthesis: the test split
stages ``prompts.csv``; a run is a zip of ten PNGs per prompt named ``prompt{NNNN}_img{NNNN}.png``;
the gold is ``prompts.csv``, the real images under ``real/`` and ``real_mapping.json`` (prompt number ->
the real images of its objective, the pair of prompts (1, 2), (3, 4), ...; FID against them). Synthesis is scored
only by model-based metrics, so its runs differ in their pictures, not in a quality a CPU can measure.
"""
from __future__ import annotations

import random

from devtools.demo.encoding import csv_bytes, json_bytes, zip_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial, hex_id, tiny_png

# Answers are short sentences, as in the 2025 data (Kvasir-VQA-x1), so BLEU and METEOR have n-grams to match.
QUESTION_BANK = (
    ("How many polyps are in the image?", ("There is one polyp in the image.", "There are two polyps in the image.",
                                           "There are three polyps visible.", "No polyps are visible.")),
    ("What color is the abnormality?", ("The abnormality is pink and red.", "The abnormality is red.",
                                        "The abnormality appears white.", "The abnormality is pink.")),
    ("Where in the image is the abnormality?", ("The abnormality is in the center of the image.", "It is located in the upper left.",
                                                "It is in the lower right of the image.", "It is in the center and lower left.")),
    ("Is there a green/black box artefact?", ("Yes, there is a green/black box artefact.", "No, there is no box artefact.")),
    ("What type of procedure is the image taken from?", ("The image is taken from a colonoscopy.",
                                                         "The image is taken from a gastroscopy.")),
    ("Are there any instruments in the image?", ("No instruments are visible.", "Biopsy forceps are visible in the image.",
                                                 "A metal clip is visible.", "A tube is visible in the image.")),
)
QUESTIONS_PER_IMAGE = 3
IMAGES_PER_PROMPT = 10

PROMPT_SUBJECTS = ("a polyp of size 5 to 10 mm", "an ulcerative colitis lesion", "an oesophagitis area",
                   "a surgical instrument next to a polyp", "a normal cecum", "a pedunculated polyp")
PROMPT_PLACES = ("in the center", "in the lower right", "at the upper left", "near the edge")


class VqaAnswering(FormatGenerator):
    """Items are ``{index, img_id, question, answer}``; a wrong answer is another answer to the same question."""

    run_format = "vqa-gi-answers-json"

    def split(self, rng, split, count):
        image_count = -(-count // QUESTIONS_PER_IMAGE)
        image_ids = [f"c{hex_id(rng, 24)}" for _ in range(image_count)]
        items = []
        for image_id in image_ids:
            for question, answers in rng.sample(QUESTION_BANK, QUESTIONS_PER_IMAGE):
                items.append({"index": len(items), "img_id": image_id, "question": question, "answer": rng.choice(answers)})
        items = items[:count]
        files = {f"images/{image_id}.png": tiny_png(rng) for image_id in image_ids}
        files["questions.json"] = json_bytes([{k: item[k] for k in ("index", "img_id", "question")} for item in items])
        return SplitMaterial(items, files, {"answers.json": json_bytes(items)})

    def predict(self, material, index, correct, rng):
        item = dict(material.items[index])
        if not correct:
            options = dict(QUESTION_BANK)[item["question"]]
            item["answer"] = rng.choice([a for a in options if a != item["answer"]])
        return item

    def encode(self, material, answers, system, variant):
        if variant == "alternate":  # indices written as strings, which the format accepts too
            answers = [{**answer, "index": str(answer["index"])} for answer in answers]
        return json_bytes(answers)

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        answers[4] = {**answers[4], "answer": 1}
        return InvalidRun(json_bytes(answers), f"the answer of index {answers[4]['index']} is a number, not a string")


REAL_IMAGES = 12
REAL_PER_OBJECTIVE = 6  # each objective's real reference: its own slice of the real images


def real_mapping(prompt_count: int) -> dict[str, list[str]]:
    """Prompt number -> real image ids, the same for both prompts of an objective (as the organizers' file)."""
    mapping = {}
    for number in range(1, prompt_count + 1):
        first = ((number - 1) // 2 * REAL_PER_OBJECTIVE) % REAL_IMAGES
        mapping[str(number)] = [f"real{(first + k) % REAL_IMAGES + 1:03d}" for k in range(REAL_PER_OBJECTIVE)]
    return mapping


class VqaSynthesis(FormatGenerator):
    """Items are prompt ids; a run holds ten pictures per prompt (their content is not scored on CPU)."""

    run_format = "vqa-gi-images-zip"
    test_count = 4
    dev_count = 3

    def split(self, rng, split, count):
        prompts = [(f"prompt{number:04d}", f"Generate an image containing {rng.choice(PROMPT_SUBJECTS)} "
                    f"{rng.choice(PROMPT_PLACES)}.") for number in range(1, count + 1)]
        table = csv_bytes(prompts, ["prompt_id", "prompt"])
        files = {"prompts.csv": table}
        if split == "dev":  # development data: real examples of what each prompt describes
            files.update({f"images/{prompt_id}_example.png": tiny_png(rng, 24, 24) for prompt_id, _ in prompts})
        # The real images the generated ones are compared with (FID); drawn apart so other draws stay as they were.
        real_rng = random.Random(f"{split}-real-{count}")
        real = {f"real/real{number:03d}.png": tiny_png(real_rng, 24, 24) for number in range(1, REAL_IMAGES + 1)}
        gold = {"prompts.csv": table, **real, "real_mapping.json": json_bytes(real_mapping(count))}
        return SplitMaterial([prompt_id for prompt_id, _ in prompts], files, gold)

    def predict(self, material, index, correct, rng):
        prompt_id = material.items[index]
        return prompt_id, [tiny_png(rng, 8, 8) for _ in range(IMAGES_PER_PROMPT)]

    def encode(self, material, answers, system, variant):
        folder = f"{system}/" if variant == "alternate" else ""  # one enclosing folder is allowed
        return zip_bytes({f"{folder}{prompt_id}_img{number:04d}.png": picture
                          for prompt_id, pictures in answers
                          for number, picture in enumerate(pictures, start=1)})

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        prompt_id, pictures = answers[1]
        answers[1] = (prompt_id, pictures[:-1])
        return InvalidRun(self.encode(material, answers, system, None),
                          f"{prompt_id} has {IMAGES_PER_PROMPT - 1} images (every prompt needs exactly {IMAGES_PER_PROMPT})")
