"""ImageCLEFtoPicto (``topicto-json``): French sentences to sequences of pictogram terms.

The test split stages ``sentences.json`` (``{id, src}``); a run is the JSON list ``{id, hyp}``
of space-separated pictogram terms; the gold is ``references.json`` (``{id, ref}``). A wrong
hypothesis swaps one term for another of the same kind and drops the time word, so it keeps
partial credit, as real systems do.
"""
from __future__ import annotations

import random

from devtools.demo.encoding import json_bytes
from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial

# subject term -> surface form; verb term -> surface form per subject; object term -> surface form
SUBJECTS = {"tu": "tu", "il": "il", "elle": "elle", "nous": "nous"}
VERBS = {
    "manger": {"tu": "manges", "il": "mange", "elle": "mange", "nous": "mangeons"},
    "boire": {"tu": "bois", "il": "boit", "elle": "boit", "nous": "buvons"},
    "vouloir": {"tu": "veux", "il": "veut", "elle": "veut", "nous": "voulons"},
    "voir": {"tu": "vois", "il": "voit", "elle": "voit", "nous": "voyons"},
    "prendre": {"tu": "prends", "il": "prend", "elle": "prend", "nous": "prenons"},
}
OBJECTS = {"pomme": "une pomme", "eau": "de l'eau", "chat": "le chat", "pain": "du pain",
           "maison": "la maison", "livre": "un livre", "médecin": "le médecin"}
TIMES = {"demain": "demain", "aujourd'hui": "aujourd'hui", "": ""}


class ToPicto(FormatGenerator):
    """Items are ``(id, source sentence, reference terms)``."""

    run_format = "topicto-json"

    def split(self, rng, split, count):
        items = [self.sentence(rng, f"{split}_{number:04d}") for number in range(1, count + 1)]
        files = {"sentences.json": json_bytes([{"id": i, "src": src} for i, src, _ in items])}
        return SplitMaterial(items, files, {"references.json": json_bytes([{"id": i, "ref": ref} for i, _, ref in items])})

    @staticmethod
    def sentence(rng: random.Random, sentence_id: str) -> tuple[str, str, str]:
        subject, verb, thing, time = (rng.choice(list(table)) for table in (SUBJECTS, VERBS, OBJECTS, TIMES))
        source = " ".join(filter(None, (TIMES[time], SUBJECTS[subject], VERBS[verb][subject], OBJECTS[thing])))
        reference = " ".join(filter(None, (time, subject, verb, thing)))
        return sentence_id, source, reference

    def predict(self, material, index, correct, rng):
        sentence_id, _, reference = material.items[index]
        if correct:
            return sentence_id, reference
        terms = [term for term in reference.split() if term not in TIMES]
        terms[-1] = rng.choice([thing for thing in OBJECTS if thing != terms[-1]])
        return sentence_id, " ".join(terms)

    def encode(self, material, answers, system, variant):
        return json_bytes([{"id": sentence_id, "hyp": hypothesis} for sentence_id, hypothesis in answers])

    def invalid_run(self, material, rng, system):
        answers = self.answers(material, 1.0, rng)
        answers.insert(3, answers[0])
        return InvalidRun(self.encode(material, answers, system, None),
                          f"the id {answers[0][0]} appears twice (no duplicate ids)")
