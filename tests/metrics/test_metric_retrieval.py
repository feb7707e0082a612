"""nDCG@1/3/5 agree with ir-measures (pytrec_eval) on the same qrels, built with the table by hand.

By default (as the organizers' 2025 script) pairs judged by one of the two annotators are left out
and the mean skips unjudged arguments; ``ndcg_annotators: all_pairs`` and ``ndcg_average_over:
all_arguments`` give the other reading, checked here too."""
from __future__ import annotations

import random

import ir_measures
import pandas as pd
import pytest
from ir_measures import nDCG

from include.metrics import score_run
from include.metrics.retrieval import graded_relevance

TABLE = {(2, 2): 2, (1, 2): 2, (0, 2): 1, (0, 1): 1, (1, 1): 1, (0, 0): 0}


def combine(a: int, b: int) -> int:
    return TABLE[tuple(sorted((a, b)))]


def generated_touche(seed: int, arguments: int = 30):
    rng = random.Random(seed)
    images = [f"I{n:06x}" for n in range(400)]
    judgments, qrels, complete, run = [], {}, {}, []
    for a in range(arguments):
        argument = f"A{a:03d}"
        pool = rng.sample(images, rng.randint(0, 12))  # an argument may have no judged image
        qrels[argument], complete[argument] = {}, {}
        for image in pool:
            annotators = ["x", "y"] if rng.random() < 0.8 else ["x"]
            per_annotator = []
            for annotator in annotators:
                aspects = {aspect: rng.choice([0, 0, 1, 2]) for aspect in ("topic", "stance")}
                judgments += [{"argument_id": argument, "image_id": image, "annotator": annotator,
                               "aspect": aspect, "value": value} for aspect, value in aspects.items()]
                per_annotator.append(combine(aspects["topic"], aspects["stance"]))
            qrels[argument][image] = per_annotator[0] if len(per_annotator) == 1 else combine(*per_annotator)
            if len(per_annotator) == 2:
                complete[argument][image] = combine(*per_annotator)
        if a == 7:
            continue  # argument 7 is left out of the run
        candidates = pool[:3] + rng.sample(images, 6)  # some judged images, some not
        ranked = list(dict.fromkeys(rng.sample(candidates, len(candidates))))[:5]
        run += [{"argument_id": argument, "method": "retrieval", "image_id": image, "rank": rank, "tag": "team-run1"}
                for rank, image in enumerate(ranked, start=1)]
    gold = {"judgments": pd.DataFrame(judgments), "arguments": pd.DataFrame({"argument_id": list(qrels)}),
            "images": pd.DataFrame({"image_id": images})}
    return pd.DataFrame(run), gold, qrels, complete


ALL_PAIRS_ALL_ARGUMENTS = {"ndcg_annotators": "all_pairs", "ndcg_average_over": "all_arguments"}


def qrel_rows(qrels: dict) -> list:
    return [ir_measures.Qrel(a, i, rel) for a, judged in qrels.items() for i, rel in judged.items()]


def scored_docs(run: pd.DataFrame) -> list:
    return [ir_measures.ScoredDoc(r.argument_id, r.image_id, float(-r.rank)) for r in run.itertuples()]


def ir_measures_per_argument(run: pd.DataFrame, qrels: dict, depth: int) -> dict[str, float]:
    return {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ depth], qrel_rows(qrels), scored_docs(run))}


@pytest.mark.parametrize("seed", [51, 52])
def test_graded_relevance_follows_the_combination_table(seed):
    _, gold, qrels, complete = generated_touche(seed)
    as_pairs = lambda table: {(a, i): rel for a, judged in table.items() for i, rel in judged.items()}  # noqa: E731
    assert graded_relevance(gold["judgments"], "all_pairs").to_dict() == as_pairs(qrels)
    assert graded_relevance(gold["judgments"]).to_dict() == as_pairs(complete)


@pytest.mark.parametrize("seed", [51, 52])
@pytest.mark.parametrize("depth", [1, 3, 5])
def test_ndcg_matches_ir_measures_on_pairs_both_annotators_judged(seed, depth):
    run, gold, _, complete = generated_touche(seed)
    result = score_run("touche-results-jsonl", [f"ndcg_at_{depth}"], run, gold)[f"ndcg_at_{depth}"]
    reference = ir_measures_per_argument(run, complete, depth)
    judged = [argument for argument, images in complete.items() if images]
    assert list(result.per_item.index) == judged  # arguments nobody (or one annotator only) judged are skipped
    for argument in judged:  # argument 7, left out of the run, scores 0
        assert abs(result.per_item[argument] - reference.get(argument, 0.0)) < 1e-9, argument
    assert abs(result.value - sum(reference.values()) / len(judged)) < 1e-9


@pytest.mark.parametrize("seed", [51, 52])
@pytest.mark.parametrize("depth", [1, 3, 5])
def test_ndcg_matches_ir_measures(seed, depth):
    run, gold, qrels, _ = generated_touche(seed)
    result = score_run("touche-results-jsonl", [f"ndcg_at_{depth}"], run, gold,
                       options=ALL_PAIRS_ALL_ARGUMENTS)[f"ndcg_at_{depth}"]
    reference = ir_measures_per_argument(run, qrels, depth)
    # ir-measures scores the judged arguments; one without any judgement scores 0 here.
    for argument in qrels:
        assert abs(result.per_item[argument] - reference.get(argument, 0.0)) < 1e-9, argument
    assert abs(result.value - sum(reference.values()) / len(qrels)) < 1e-9
    trec_style = score_run("touche-results-jsonl", [f"ndcg_at_{depth}"], run, gold,
                           options={"ndcg_annotators": "all_pairs"})[f"ndcg_at_{depth}"]
    aggregate = ir_measures.calc_aggregate([nDCG @ depth], qrel_rows(qrels), scored_docs(run))[nDCG @ depth]
    assert abs(trec_style.value - aggregate) < 1e-9


def test_small_example_by_hand():
    judgments = pd.DataFrame([
        {"argument_id": "A", "image_id": img, "annotator": ann, "aspect": asp, "value": v}
        for img, values in {"i1": (2, 2, 2, 2), "i2": (0, 1, 1, 1), "i3": (0, 0, 0, 0)}.items()
        for (ann, asp), v in zip([("x", "t"), ("x", "s"), ("y", "t"), ("y", "s")], values)])
    gold = {"judgments": judgments, "arguments": pd.DataFrame({"argument_id": ["A"]})}
    run = pd.DataFrame({"argument_id": "A", "method": "retrieval", "image_id": ["i3", "i2", "i1"], "rank": [1, 2, 3],
                        "tag": "t"})
    # Gains: i1 -> 2, i2 -> 1, i3 -> 0. DCG@3 = 0 + 1/log2(3) + 2/log2(4); ideal = 2 + 1/log2(3).
    import math
    expected = (1 / math.log2(3) + 1) / (2 + 1 / math.log2(3))
    result = score_run("touche-results-jsonl", ["ndcg_at_3", "ndcg_at_1"], run, gold)
    assert result["ndcg_at_3"].value == pytest.approx(expected, abs=1e-12)
    assert result["ndcg_at_1"].value == 0.0


def test_a_repeated_image_counts_once_at_its_best_rank():
    judgments = pd.DataFrame({"argument_id": "A", "image_id": ["i1", "i2"], "annotator": "x", "aspect": "t",
                              "value": [2, 1]})
    gold = {"judgments": judgments, "arguments": pd.DataFrame({"argument_id": ["A"]})}
    run = pd.DataFrame({"argument_id": "A", "method": "retrieval", "image_id": ["i2", "i1", "i1"],
                        "rank": [3, 1, 2], "tag": "t"})
    # Seen as i1 at 1, i2 at 2: the ideal order, so nDCG@5 is 1.
    assert score_run("touche-results-jsonl", ["ndcg_at_5"], run, gold)["ndcg_at_5"].value == pytest.approx(1.0)
