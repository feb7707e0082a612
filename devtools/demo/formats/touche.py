"""Image retrieval for arguments, with Touché (``touche-results-jsonl``).

The test split stages the arguments (``arguments.csv`` with their claims), the image collection
(tiny PNGs and ``images.txt``). The gold holds ``judgments.csv`` (two annotators x two aspects,
values 0/1/2), ``arguments.csv`` (ids only), ``images.txt`` and, as the organizers stage it,
``excluded_arguments.txt``: the last argument of each split is left out of the evaluation and
nobody judged it (in 2025 thirteen arguments were excluded). A run is ``results.jsonl`` with five
ranked images per argument, the excluded one included (every argument must be present).
Judgement patterns are picked so that each judged image's combined grade (the organizers' table:
aspects first, then annotators) is known: the perfect run ranks the best-graded images first, a
wrong answer starts with an unjudged image and ranks the best one fourth.
"""
from __future__ import annotations

from devtools.demo.encoding import csv_bytes, jsonl_bytes, text_lines_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial, hex_id, tiny_png

RANKS = 5
JUDGED_PER_ARGUMENT = 8
COLLECTION_PER_ARGUMENT = 4  # images in the collection that no argument's pool holds
ASPECTS = ("topic", "stance")
# Per combined grade, ways the two annotators may judge the two aspects ((a1 topic, a1 stance), (a2 ...)).
PATTERNS = {
    2: (((2, 2), (1, 2)), ((2, 1), (2, 2)), ((2, 2), (2, 2))),
    1: (((1, 1), (0, 1)), ((2, 2), (0, 0)), ((1, 1), (1, 1))),
    0: (((0, 0), (0, 0)),),
}
CLAIMS = (
    "Nuclear energy is needed to reach climate targets.",
    "Homework should be abolished in primary schools.",
    "Cities should ban cars from their centres.",
    "Social media does more harm than good to teenagers.",
    "Zoos should be closed.",
    "A four-day working week would raise productivity.",
    "Plastic packaging should be taxed.",
    "Voting should be compulsory.",
)


class ToucheRetrieval(FormatGenerator):
    """Items are ``(argument id, [(image id, grade), ...])`` with grades 0/1/2, best first."""

    run_format = "touche-results-jsonl"
    test_count = 6
    dev_count = 3

    def split(self, rng, split, count):
        arguments = [f"{split}-arg-{number:03d}" for number in range(1, count + 1)]
        collection = [f"I{hex_id(rng, 16)}" for _ in range(count * (JUDGED_PER_ARGUMENT + COLLECTION_PER_ARGUMENT))]
        excluded = arguments[-1:]
        items, judgments = [], []
        for argument, start in zip(arguments, range(0, len(collection), JUDGED_PER_ARGUMENT)):
            # The first image of every pool is highly relevant, so every argument has an ideal ranking.
            grades = [2] + [rng.choice((0, 0, 1, 1, 2, 2)) for _ in range(JUDGED_PER_ARGUMENT - 1)]
            pool = list(zip(collection[start:start + JUDGED_PER_ARGUMENT], grades))
            for image, grade in pool:
                patterns = rng.choice(PATTERNS[grade])
                if argument in excluded:
                    continue  # left out of the evaluation: nobody judged it
                for annotator, values in zip(("a1", "a2"), patterns):
                    judgments += [[argument, image, annotator, aspect, value] for aspect, value in zip(ASPECTS, values)]
            items.append((argument, sorted(pool, key=lambda judged: -judged[1])))
        claims = [[argument, CLAIMS[number % len(CLAIMS)]] for number, argument in enumerate(arguments)]
        files = {f"images/{image}.png": tiny_png(rng, 12, 12) for image in collection}
        files["arguments.csv"] = csv_bytes(claims, ["argument_id", "claim"])
        files["images.txt"] = text_lines_bytes(collection)
        labels = {"judgments.csv": csv_bytes(judgments, ["argument_id", "image_id", "annotator", "aspect", "value"]),
                  "arguments.csv": csv_bytes([[a] for a in arguments], ["argument_id"]),
                  "images.txt": text_lines_bytes(collection),
                  "excluded_arguments.txt": text_lines_bytes(excluded)}
        return SplitMaterial(items, files, labels, extra={"collection": collection})

    def predict(self, material, index, correct, rng):
        argument, pool = material.items[index]
        if correct:
            return argument, [image for image, _ in pool[:RANKS]]
        # A plausible miss: an unjudged image first, the best one pushed down to rank four, the worst last.
        judged = {image for image, _ in pool}
        unjudged = [image for image in material.extra["collection"] if image not in judged]
        ranked = [image for image, _ in pool]
        return argument, [rng.choice(unjudged), ranked[1], ranked[2], ranked[0], ranked[-1]]

    def encode(self, material, answers, system, variant):
        return jsonl_bytes({"argument_id": argument, "method": "retrieval", "image_id": image, "rank": rank, "tag": system}
                           for argument, images in answers for rank, image in enumerate(images, start=1))

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        records = [{"argument_id": a, "method": "retrieval", "image_id": i, "rank": r, "tag": system}
                   for a, images in answers for r, i in enumerate(images, start=1)]
        argument, pool = material.items[0]
        # A sixth image: the published validator lets extra ranks through, the task's rule (ranks 1-5) does not.
        records.insert(5, {"argument_id": argument, "method": "retrieval", "image_id": pool[RANKS][0], "rank": 6,
                           "tag": system})
        return InvalidRun(jsonl_bytes(records), f"rank 6 for argument {argument} (ranks run from 1 to 5)")
