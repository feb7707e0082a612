"""The metric registry: every metric a campaign file may name, with the facts the pipeline needs.

A campaign file refers to metrics by the names below; the campaign checker refuses unknown
names and metrics that do not apply to a task's run format. Each entry says which run formats
it applies to, whether higher is better, its range, whether it needs a model or a GPU (and so
which worker queue runs it), what one per-item value stands for, and which options it reads.

This module imports nothing heavy: ``compute`` resolves the family module on first call, so
the campaign checker can import the registry without loading scikit-learn, NLTK or sacrebleu.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from include.models import catalog as _models  # names and fetch commands only: imports no model library

ComputeFunction = Callable[..., Any]  # (run, gold, options) -> MetricResult
# The Celery worker queues (docker-compose.yaml's airflow-worker and airflow-worker-models): metrics
# that need a model run on ``models`` (workers with torch and the weights).
DEFAULT_QUEUE, MODELS_QUEUE = "default", "models"


class FamilyFunction:
    """A callable that imports ``include.metrics.<module>`` only when first called."""

    def __init__(self, module: str, function: str):
        self.module = module
        self.function = function
        self._resolved: ComputeFunction | None = None

    def resolve(self) -> ComputeFunction:
        if self._resolved is None:
            family = importlib.import_module(f"include.metrics.{self.module}")
            self._resolved = getattr(family, self.function)
        return self._resolved

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"include.metrics.{self.module}.{self.function}"


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric. ``options`` maps each option the metric reads to its default."""

    name: str
    formats: tuple[str, ...]
    higher_is_better: bool
    value_range: tuple[float, float]
    needs_model: str | None
    needs_gpu: bool
    queue: str
    per_item_unit: str
    description: str
    compute: ComputeFunction
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # None: the value is the mean of the per-item values. Otherwise the metric has no per-item form:
    # the name of the rule that makes its value from per-item components (include/campaign/significance.py).
    corpus_statistic: str | None = None

    @property
    def per_item_form(self) -> bool:
        return self.corpus_statistic is None


# Options shared by several metrics; the defaults are the organizers' rules (docs/metrics.md).
MANUAL_CONCEPT_CUIS = (
    "C0002978", "C0040405", "C0024485", "C0032743", "C0041618", "C1306645", "C1140618", "C0037949",
    "C0030797", "C0023216", "C0037303", "C0817096", "C0006141", "C0000726", "C0920367",
)
CONCEPT_OPTIONS = {"concept_case_sensitive": False}
MANUAL_CONCEPT_OPTIONS = {**CONCEPT_OPTIONS, "manual_concept_cuis": MANUAL_CONCEPT_CUIS}
CAPTION_BLEU_OPTIONS = {"caption_bleu_aggregation": "mean_of_images", "caption_bleu_max_order": 4}
VQA_METEOR_OPTIONS = {"meteor_alpha": 0.9, "meteor_beta": 3.0, "meteor_gamma": 0.5}
PICTO_BLEU_OPTIONS = {"picto_bleu_tokenize": "13a"}
PICTO_METEOR_OPTIONS = {**VQA_METEOR_OPTIONS, "picto_meteor_tokenize": "treebank"}
MASK_OPTIONS = {"magic_empty_mask_score": 1.0}
CLOSED_VQA_OPTIONS = {"closed_vqa_average": "items"}
NDCG_OPTIONS = {"ndcg_gain": "linear", "ndcg_average_over": "judged_arguments", "ndcg_annotators": "complete_pairs"}
MODEL_OPTIONS = {"model_dir": None}
# published: the objectives the organizers' scoring loop pairs (the first half of the prompts); all: every prompt
SYNTHESIS_OPTIONS = {**MODEL_OPTIONS, "objective_pairs": "published"}
# Corpus-level metrics: no per-item form; significance resamples their items' components with this rule.
CORPUS_STATISTICS = {
    "gans_kappa": "kappa", "gans_f1": "f1", "magic_jaccard": "ratio", "magic_dice": "ratio", "picto_er": "ratio",
    "vqa_bleu": "bleu", "picto_sacrebleu": "bleu", "synthesis_fbd": "frechet",
}


def _spec(name, formats, *, higher=True, value_range=(0.0, 1.0), model=None, gpu=False, unit,
          description, compute, options=None) -> MetricSpec:
    module, function = compute.split(":")
    return MetricSpec(
        name=name,
        formats=tuple(formats) if isinstance(formats, (tuple, list)) else (formats,),
        higher_is_better=higher,
        value_range=(float(value_range[0]), float(value_range[1])),
        needs_model=model,
        needs_gpu=gpu,
        queue=MODELS_QUEUE if model else DEFAULT_QUEUE,
        per_item_unit=unit,
        description=description,
        compute=FamilyFunction(module, function),
        options=MappingProxyType(dict(options or {})),
        corpus_statistic=CORPUS_STATISTICS.get(name),
    )


def _model_spec(name, formats, model, description, *, unit, family, value_range=(0.0, 1.0),
                options=MODEL_OPTIONS) -> MetricSpec:
    return _spec(name, formats, model=model, gpu=True, unit=unit, value_range=value_range,
                 description=description, compute=f"{family}:{name}", options=options)


_BERTSCORE_MODEL = _models.BERTSCORE.name
_IMAGE_CAPTION_MODEL = _models.MEDIMAGEINSIGHT.name
_BIOMEDCLIP_MODEL = _models.BIOMEDCLIP.name
_UMLS_MODEL = _models.UMLS.name
_ALIGNSCORE_MODEL = _models.ALIGNSCORE.name
_BLEURT_MODEL = _models.BLEURT.name
_BOTH = _models.MODEL_SEPARATOR


_ALL_SPECS = [
    # Concept detection (primary first).
    _spec("concept_f1", "caption-concepts-csv", unit="image", compute="concepts:concept_f1",
          options=CONCEPT_OPTIONS,
          description="Mean per-image F1 of predicted CUIs; images with no gold CUI are left out."),
    _spec("concept_f1_manual", "caption-concepts-csv", unit="image",
          compute="concepts:concept_f1_manual", options=MANUAL_CONCEPT_OPTIONS,
          description="Mean per-image F1 on the 15 manually validated CUIs (concepts_manual.csv)."),
    # Caption prediction.
    _spec("caption_relevance", "caption-text-csv", model=f"{_BERTSCORE_MODEL}{_BOTH}{_IMAGE_CAPTION_MODEL}",
          gpu=True, unit="image", compute="caption_models:caption_relevance", options=MODEL_OPTIONS,
          description="Mean of BERTScore F1, ROUGE-1 F and image-caption similarity."),
    _model_spec("caption_bertscore", "caption-text-csv", _BERTSCORE_MODEL, family="caption_models", unit="image",
                description="BERTScore F1 with idf weights from the gold captions."),
    _spec("caption_rouge1", "caption-text-csv", unit="image", compute="captions:caption_rouge1",
          description="Mean per-image ROUGE-1 F after the official preprocessing; both empty scores 1."),
    _model_spec("caption_image_similarity", "caption-text-csv", _IMAGE_CAPTION_MODEL, family="caption_models", unit="image",
                description="2.5 x max(cos, 0) between image and caption embeddings.",
                value_range=(0.0, 2.5)),
    _model_spec("caption_factuality", "caption-text-csv", f"{_UMLS_MODEL}{_BOTH}{_ALIGNSCORE_MODEL}", family="caption_models",
                unit="image", description="Mean of UMLS-concept F1 and AlignScore."),
    _model_spec("caption_umls_f1", "caption-text-csv", _UMLS_MODEL, family="caption_models", unit="image",
                description="F1 of UMLS concepts extracted from the predicted and gold captions."),
    _model_spec("caption_alignscore", "caption-text-csv", _ALIGNSCORE_MODEL, family="caption_models", unit="image",
                description="AlignScore of the predicted caption against the gold caption."),
    _model_spec("caption_bleurt", "caption-text-csv", _BLEURT_MODEL, family="caption_models", unit="image",
                description="BLEURT of the predicted caption against the gold caption."),
    _spec("caption_bleu", "caption-text-csv", unit="image", compute="captions:caption_bleu",
          options=CAPTION_BLEU_OPTIONS,
          description="BLEU (sacrebleu, 0-1) after the official preprocessing; both empty scores 1."),
    # GANs.
    _spec("gans_kappa", "gans-detection-csv", value_range=(-1.0, 1.0), unit="image",
          compute="gans:gans_kappa", description="Cohen's kappa between predicted and gold labels."),
    _spec("gans_accuracy", "gans-detection-csv", unit="image", compute="gans:gans_accuracy",
          description="Share of images whose label is right."),
    _spec("gans_f1", "gans-detection-csv", unit="image", compute="gans:gans_f1",
          description="Binary F1 of label 1 (real images were used to train the generator)."),
    _spec("attribution_accuracy", "gans-attribution-csv", unit="image",
          compute="gans:attribution_accuracy",
          description="Share of synthetic images attributed to the right training subset."),
    # MEDVQA-GI answering.
    _spec("vqa_meteor", "vqa-gi-answers-json", unit="question", compute="text:vqa_meteor",
          options=VQA_METEOR_OPTIONS, description="Mean per-question METEOR (NLTK, WordNet 3.0)."),
    _spec("vqa_bleu", "vqa-gi-answers-json", unit="question", compute="text:vqa_bleu",
          description="Corpus BLEU (sacrebleu 13a, 0-1) over all answers."),
    _spec("vqa_rouge1", "vqa-gi-answers-json", unit="question", compute="text:vqa_rouge1",
          description="Mean per-question ROUGE-1 F (rouge-score, no stemming)."),
    _spec("vqa_rouge2", "vqa-gi-answers-json", unit="question", compute="text:vqa_rouge2",
          description="Mean per-question ROUGE-2 F (rouge-score, no stemming)."),
    _spec("vqa_rougeL", "vqa-gi-answers-json", unit="question", compute="text:vqa_rougeL",
          description="Mean per-question ROUGE-L F (rouge-score, no stemming)."),
    # MEDVQA-GI synthesis (all on BiomedCLIP features; an objective is a pair of prompts, sets A and B).
    _model_spec("synthesis_fidelity", "vqa-gi-images-zip", _BIOMEDCLIP_MODEL, family="synthesis", unit="objective",
                options=SYNTHESIS_OPTIONS, value_range=(0.0, 1000.0),
                description="Mean over objectives of 1000 / (1 + mean FID of sets A and B vs the objective's real images)."),
    _model_spec("synthesis_agreement", "vqa-gi-images-zip", _BIOMEDCLIP_MODEL, family="synthesis", unit="objective",
                options=SYNTHESIS_OPTIONS, value_range=(-1.0, 1.0),
                description="Mean cosine similarity between an objective's two image sets A and B."),
    _model_spec("synthesis_diversity", "vqa-gi-images-zip", _BIOMEDCLIP_MODEL, family="synthesis", unit="objective",
                options=SYNTHESIS_OPTIONS, value_range=(0.0, 2.0),
                description="Mean pairwise distance of L2-normalised features within each image set."),
    _spec("synthesis_fbd", "vqa-gi-images-zip", higher=False, value_range=(0.0, float("inf")),
          model=_BIOMEDCLIP_MODEL, gpu=True, unit="objective", compute="synthesis:synthesis_fbd", options=SYNTHESIS_OPTIONS,
          description="Frechet distance of all generated images vs the objectives' real images on BiomedCLIP features (lower is better)."),
    # MAGIC segmentation and closed VQA.
    _spec("magic_jaccard", "magic-masks-zip", unit="image", compute="magic:magic_jaccard",
          options=MASK_OPTIONS, description="Jaccard pooled over all pixels vs the majority-vote mask."),
    _spec("magic_dice", "magic-masks-zip", unit="image", compute="magic:magic_dice",
          options=MASK_OPTIONS, description="Dice pooled over all pixels vs the majority-vote mask."),
    _spec("magic_dice_mean_of_max", "magic-masks-zip", unit="image",
          compute="magic:magic_dice_mean_of_max", options=MASK_OPTIONS,
          description="Per image, the best Dice against any annotator; mean over images."),
    _spec("magic_dice_mean_of_mean", "magic-masks-zip", unit="image",
          compute="magic:magic_dice_mean_of_mean", options=MASK_OPTIONS,
          description="Per image, the mean Dice over annotators; mean over images."),
    _spec("magic_accuracy_all", "magic-closed-vqa-json", unit="encounter-family",
          compute="magic:magic_accuracy_all", options=CLOSED_VQA_OPTIONS,
          description="Set overlap |gold & predicted| / max(|gold|, |predicted|), breakdown per family."),
    # Argument image retrieval.
    _spec("ndcg_at_5", "touche-results-jsonl", unit="argument", compute="retrieval:ndcg_at_5",
          options=NDCG_OPTIONS, description="nDCG@5 over arguments with the graded-relevance table."),
    _spec("ndcg_at_1", "touche-results-jsonl", unit="argument", compute="retrieval:ndcg_at_1",
          options=NDCG_OPTIONS, description="nDCG@1 over arguments with the graded-relevance table."),
    _spec("ndcg_at_3", "touche-results-jsonl", unit="argument", compute="retrieval:ndcg_at_3",
          options=NDCG_OPTIONS, description="nDCG@3 over arguments with the graded-relevance table."),
    # ToPicto.
    _spec("picto_er", "topicto-json", higher=False, value_range=(0.0, float("inf")), unit="sentence",
          compute="text:picto_er", description="Word error rate over pictogram terms x 100 (jiwer)."),
    _spec("picto_sacrebleu", "topicto-json", value_range=(0.0, 100.0), unit="sentence",
          compute="text:picto_sacrebleu", options=PICTO_BLEU_OPTIONS,
          description="Corpus SacreBLEU (0-100) over pictogram sentences."),
    _spec("picto_meteor", "topicto-json", value_range=(0.0, 100.0), unit="sentence",
          compute="text:picto_meteor", options=PICTO_METEOR_OPTIONS,
          description="Mean per-sentence METEOR x 100 (NLTK, WordNet 3.0)."),
    # Multimodal reasoning.
    _spec("mmr_accuracy", "multimodal-reasoning-json", unit="question", compute="reasoning:mmr_accuracy",
          description="Share of questions answered right; breakdown per language."),
]

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _ALL_SPECS}


def metric_names() -> list[str]:
    """Every registered metric name, in registration order (each task's primary first)."""
    return list(METRICS)


def get_metric(name: str) -> MetricSpec:
    """The spec of one metric; ``KeyError`` lists every known name."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}") from None


def metrics_for_format(format_name: str) -> list[str]:
    """The metrics that apply to one run format, in registration order."""
    return [spec.name for spec in METRICS.values() if format_name in spec.formats]
