"""Caption prediction, model part: BERTScore, image-caption similarity, AlignScore, UMLS F1, BLEURT.

The organizers' rules (ImageCLEFmedical Caption 2025): captions are lower-cased, digit runs become
``number`` and ASCII punctuation goes (BERTScore, ROUGE, BLEURT); an image whose gold and predicted
captions are both empty scores 1 on every metric; a gold image the run does not caption is an empty
prediction.

- BERTScore F1 with ``microsoft/deberta-xlarge-mnli`` (bert-score's layer 40), idf weights from the
  preprocessed gold captions: the value of one ``BERTScorer.score`` call per pair, as the organizers
  call it, computed in batches with bert-score's own embedding and matching functions (see
  :func:`bertscore_f1`), the model loaded once per process.
- image-caption similarity ``2.5 * max(cos(image, caption), 0)`` from the image and the raw caption,
  test images at ``images/<ID>.<png|jpg|jpeg>`` of the staged test split (or of the gold folder).
- AlignScore ``nli_sp`` (its published inference on transformers): the raw gold caption is the context,
  split into chunks of about 350 words at sentence ends, the raw prediction the claim, split into
  sentences; per claim sentence the best chunk's probability of "aligned" (3-way head, label 0);
  the mean over claim sentences. An empty prediction against a non-empty gold scores 0.
- UMLS-concept F1 of the concepts (CUIs) MedCAT's ``get_entities`` finds in the raw gold and predicted
  captions, as the organizers count it: 2|G∩P|/(|G|+|P|), 0 when either side has none (unless both
  captions are empty: 1).
- relevance = mean(BERTScore, ROUGE-1, similarity); factuality = mean(UMLS F1, AlignScore), per image.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.captions import caption_pairs, caption_rouge1
from include.metrics.model_inputs import GOLD_DIR, INPUTS_DIR, InputMissing, model_directory, recent, reports_missing, source
from include.metrics.result import MetricResult
from include.models import catalog

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ALIGNSCORE_CHUNK_WORDS = 350
SIMILARITY_SCALE = 2.5


def caption_table(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per gold image: preprocessed ``gold``/``predicted``, raw ``gold_raw``/``predicted_raw``, ``both_empty``."""
    pairs = caption_pairs(run, gold)
    if pairs is None:
        raise InputMissing("the gold folder has no captions table (captions.csv)")
    if pairs.empty:
        raise InputMissing("the gold captions table is empty")
    raw_gold = gold["captions"].assign(ID=lambda t: t["ID"].astype(str)).set_index("ID")["Caption"].fillna("").astype(str)
    raw_predicted = run.assign(ID=lambda t: t["ID"].astype(str)).drop_duplicates("ID").set_index("ID")["Caption"]
    raw_predicted = raw_predicted.reindex(pairs.index).fillna("").astype(str)
    return pairs.assign(gold_raw=raw_gold.reindex(pairs.index).to_numpy(), predicted_raw=raw_predicted.to_numpy())


def _result(values, table: pd.DataFrame, name: str) -> MetricResult:
    per_image = pd.Series(np.array(values, dtype=float), index=table.index, name=name)  # a copy: values may be cached
    per_image[table["both_empty"].to_numpy(dtype=bool)] = 1.0
    return MetricResult(value=float(per_image.mean()), per_item=per_image)


# --- BERTScore ---------------------------------------------------------------------------------------


def bertscore_f1(folder, candidates: list[str], references: list[str], name: str = catalog.BERTSCORE.name) -> np.ndarray:
    """BERTScore F1 of each pair, idf weights from ``references``: the value of one ``BERTScorer.score``
    call per pair (the organizers' way), computed in batches.

    bert-score's batched ``score`` pads each batch of pairs to its longest sentence before the greedy
    matching, where a padded position counts as a similarity of 0: a token whose cosine with every real
    token of the other sentence is negative then takes 0 instead of its best (negative) one, and the F1
    rises (by up to 2.9e-4 on 2,000 demo pairs). A call per pair never pads. So the sentences are embedded
    in batches as ``score`` does it (bert-score's ``get_bert_embedding``, each sentence once), and the
    matching (bert-score's ``greedy_cos_idf``) runs on groups of pairs of equal token lengths: no padding.
    """
    import warnings

    import torch
    from bert_score.utils import greedy_cos_idf

    from include.models.loaders import bertscore_model

    loaded = bertscore_model(name, folder)
    with loaded.lock, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Overwriting the previous importance weights")
        loaded.scorer.compute_idf(list(references))
        embedded = sentence_embeddings(loaded.scorer, list(candidates) + list(references))
    groups: dict[tuple[int, int], list[int]] = {}
    for index, (candidate, reference) in enumerate(zip(candidates, references)):
        groups.setdefault((len(embedded[candidate][0]), len(embedded[reference][0])), []).append(index)
    f1 = np.zeros(len(candidates))
    with torch.no_grad():
        for indices in groups.values():
            stacked = [torch.stack(part) for side in (references, candidates)
                       for part in zip(*(embedded[side[i]] for i in indices))]  # new tensors: greedy_cos_idf divides in place
            f1[indices] = greedy_cos_idf(*stacked)[2].double().cpu().numpy()
    return f1


def sentence_embeddings(scorer, sentences: list[str]) -> dict:
    """Each distinct sentence's (token embeddings, mask, idf weights), unpadded, embedded in batches of
    similar word counts as bert-score's ``bert_cos_score_idf`` does (the scorer's model, tokenizer, idf)."""
    from bert_score.utils import get_bert_embedding

    ordered = sorted(set(sentences), key=lambda sentence: len(sentence.split(" ")), reverse=True)
    embedded = {}
    for start in range(0, len(ordered), scorer.batch_size):
        batch = ordered[start:start + scorer.batch_size]
        # bert-score keeps the model, tokenizer and idf weights only as private attributes of the scorer
        embeddings, masks, idf = get_bert_embedding(batch, scorer._model, scorer._tokenizer, scorer._idf_dict, device=scorer.device)
        for row, sentence in enumerate(batch):
            length = int(masks[row].sum())
            embedded[sentence] = (embeddings[row, :length].cpu(), masks[row, :length].cpu(), idf[row, :length].cpu())
    return embedded


@reports_missing
def caption_bertscore(run, gold, options: Mapping[str, Any]) -> MetricResult:
    table = caption_table(run, gold)
    folder = model_directory(options).require(catalog.BERTSCORE.name)
    candidates, references = table["predicted"].tolist(), table["gold"].tolist()
    values = recent(("bertscore", str(folder), tuple(candidates), tuple(references)),
                    lambda: bertscore_f1(folder, candidates, references))
    return _result(values, table, "bertscore")


# --- image-caption similarity --------------------------------------------------------------------------


def gold_image_paths(run, ids) -> list:
    """Each test image: ``<gold>/images/<ID>.<ext>``, else the staged test inputs' ``images/<ID>.<ext>``."""
    folders = [folder / "images" for folder in (source(run, GOLD_DIR), source(run, INPUTS_DIR)) if folder is not None]
    if not folders:
        raise InputMissing("the gold folder is not known to the metric (score through include.campaign.evaluation)")
    found = {}
    for images in folders:
        if images.is_dir():
            for path in sorted(images.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    found.setdefault(path.stem, path)
    absent = [i for i in ids if i not in found]
    if absent:
        raise InputMissing(f"no test image for {len(absent)} caption(s) (e.g. images/{absent[0]}.png) in the staged test "
                           "split or the gold folder; stage every test image as images/<ID>.png or .jpg")
    return [found[i] for i in ids]


def cosine_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    left = left / np.linalg.norm(left, axis=1, keepdims=True)
    right = right / np.linalg.norm(right, axis=1, keepdims=True)
    return np.sum(left * right, axis=1)


@reports_missing
def caption_image_similarity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    from PIL import Image

    from include.models.loaders import ModelUnusable, image_text_model

    table = caption_table(run, gold)
    folder = model_directory(options).require(catalog.MEDIMAGEINSIGHT.name)
    paths = gold_image_paths(run, list(table.index))
    model = image_text_model(catalog.MEDIMAGEINSIGHT.name, folder)
    if model.tokenizer is None:
        raise ModelUnusable(f"model {catalog.MEDIMAGEINSIGHT.name} in {folder} has no text tokenizer")
    texts = table["predicted_raw"].tolist()

    def similarity():
        cosine = cosine_rows(model.image_features([Image.open(path) for path in paths]), model.text_features(texts))
        return SIMILARITY_SCALE * np.maximum(cosine, 0.0)

    values = recent(("similarity", str(folder), tuple(map(str, paths)), tuple(texts)), similarity)
    return _result(values, table, "image_similarity")


# --- AlignScore nli_sp ---------------------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    """NLTK's Punkt sentences (the trained model when installed, else an untrained splitter)."""
    from include.metrics.text import _sentence_splitter

    splitter = _sentence_splitter()
    if splitter is None:
        from nltk.tokenize import sent_tokenize

        return sent_tokenize(text)
    return splitter.tokenize(text)


def context_chunks(context: str, words: int = ALIGNSCORE_CHUNK_WORDS) -> list[str]:
    """AlignScore's chunking: the context's sentences in ``len(words)//350 + 1`` groups of equal count."""
    parts = sentences(context) or [""]
    groups = len(context.strip().split()) // words + 1
    size = max(len(parts) // groups, 1)
    return [" ".join(parts[i:i + size]) for i in range(0, len(parts), size)]


def alignscore_nli_sp(folder, contexts: list[str], claims: list[str], batch_size: int = 32) -> np.ndarray:
    """AlignScore (nli_sp) of each (context, claim); every (chunk, sentence) pair of every item in batches."""
    import torch

    from include.models.loaders import alignscore_model

    loaded = alignscore_model(catalog.ALIGNSCORE.name, folder)
    pairs, shapes = [], []
    for context, claim in zip(contexts, claims):
        chunks, claim_sentences = context_chunks(context), sentences(claim)
        shapes.append((len(chunks), len(claim_sentences)))
        pairs += [(chunk, sentence) for chunk in chunks for sentence in claim_sentences]
    aligned = np.zeros(len(pairs))
    device = next(loaded.model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start:start + batch_size]
            tokens = loaded.tokenizer([p for p, _ in batch], [h for _, h in batch], padding=True, truncation="only_first",
                                      max_length=loaded.max_length, return_tensors="pt").to(device)
            logits = loaded.model(**tokens).logits
            aligned[start:start + len(batch)] = torch.softmax(logits.double(), dim=-1)[:, 0].cpu().numpy()
    scores, offset = [], 0
    for chunks, count in shapes:
        block = aligned[offset:offset + chunks * count].reshape(chunks, count)
        offset += chunks * count
        scores.append(float(block.max(axis=0).mean()) if count else 0.0)
    return np.asarray(scores)


@reports_missing
def caption_alignscore(run, gold, options: Mapping[str, Any]) -> MetricResult:
    table = caption_table(run, gold)
    folder = model_directory(options).require(catalog.ALIGNSCORE.name)
    return _result(alignscore_nli_sp(folder, table["gold_raw"].tolist(), table["predicted_raw"].tolist()), table, "alignscore")


# --- UMLS concepts (MedCAT) -------------------------------------------------------------------------------


def concept_f1(gold: set, predicted: set) -> float:
    """The organizers' F1: no shared concept (or no concept on a side) gives 0, both-empty captions aside."""
    overlap = len(gold & predicted)
    return 0.0 if overlap == 0 else 2 * overlap / (len(gold) + len(predicted))


def medcat_concepts(folder, texts: list[str]) -> list[set]:
    """The CUIs of each text's entities; medcat 2 answers ``{}`` (no ``entities`` key) for an empty text."""
    from include.models.loaders import medcat_model

    cat = medcat_model(catalog.UMLS.name, folder)
    return [{str(entity["cui"]) for entity in cat.get_entities(text).get("entities", {}).values()} for text in texts]


@reports_missing
def caption_umls_f1(run, gold, options: Mapping[str, Any]) -> MetricResult:
    table = caption_table(run, gold)
    folder = model_directory(options).require(catalog.UMLS.name)
    gold_concepts = medcat_concepts(folder, table["gold_raw"].tolist())
    predicted_concepts = medcat_concepts(folder, table["predicted_raw"].tolist())
    return _result([concept_f1(g, p) for g, p in zip(gold_concepts, predicted_concepts)], table, "umls_f1")


# --- BLEURT --------------------------------------------------------------------------------------------------


def bleurt_scores(folder, candidates: list[str], references: list[str], batch_size: int = 32) -> np.ndarray:
    import torch

    from include.models.loaders import bleurt_model

    loaded = bleurt_model(catalog.BLEURT.name, folder)
    scores = []
    with torch.inference_mode():
        for start in range(0, len(candidates), batch_size):
            tokens = loaded.tokenizer(list(references[start:start + batch_size]), list(candidates[start:start + batch_size]),
                                      padding="longest", truncation=True, max_length=loaded.max_length, return_tensors="pt")
            scores.append(loaded.model(**tokens).logits.flatten().double().cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0)


@reports_missing
def caption_bleurt(run, gold, options: Mapping[str, Any]) -> MetricResult:
    table = caption_table(run, gold)
    folder = model_directory(options).require(catalog.BLEURT.name)
    return _result(bleurt_scores(folder, table["predicted"].tolist(), table["gold"].tolist()), table, "bleurt")


# --- the two ranking scores -------------------------------------------------------------------------------------


def _mean_of(parts: dict[str, MetricResult], name: str) -> MetricResult:
    absent = [f"{part}: {result.not_computed.removeprefix('not computed: ')}" for part, result in parts.items() if not result.computed]
    if absent:
        return MetricResult.missing("; ".join(absent))
    table = pd.concat({part: result.per_item for part, result in parts.items()}, axis=1)
    per_image = table.mean(axis=1).rename(name)
    return MetricResult(value=float(per_image.mean()), per_item=per_image,
                        breakdown={part: float(result.value) for part, result in parts.items()})


def caption_relevance(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Mean per image of BERTScore F1, ROUGE-1 F and image-caption similarity (the primary score)."""
    return _mean_of({"caption_bertscore": caption_bertscore(run, gold, options),
                     "caption_rouge1": caption_rouge1(run, gold, options),
                     "caption_image_similarity": caption_image_similarity(run, gold, options)}, "relevance")


def caption_factuality(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Mean per image of UMLS-concept F1 and AlignScore."""
    return _mean_of({"caption_umls_f1": caption_umls_f1(run, gold, options),
                     "caption_alignscore": caption_alignscore(run, gold, options)}, "factuality")
