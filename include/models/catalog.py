"""Every model the registry's metrics may need: its directory name, library and fetch command.

A model lives at ``<model_dir>/<name>`` (the name as the registry's ``needs_model`` spells it,
e.g. ``microsoft/deberta-xlarge-mnli``). The fetch command is what an organizer runs once on a
machine that can reach the Hugging Face hub; the scoring machines never download anything.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

# ``needs_model`` of a metric that needs two models joins their names with this separator.
MODEL_SEPARATOR = " + "


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``name`` is its folder under the model directory."""

    name: str
    library: str
    purpose: str
    fetch: str  # the command, with {target} standing for <model_dir>/<name>
    hub_id: str | None = None

    def fetch_command(self, model_dir: str | Path | None) -> str:
        root = str(model_dir) if model_dir else "$CLEF_MODEL_DIR"
        return self.fetch.format(target=f"{root}/{self.name}", hub_id=self.hub_id or self.name)


def _hub(name: str, library: str, purpose: str, hub_id: str | None = None) -> ModelSpec:
    return ModelSpec(name, library, purpose,
                     'huggingface-cli download {hub_id} --local-dir "{target}"', hub_id or name)


BERTSCORE = _hub("microsoft/deberta-xlarge-mnli", "bert-score (transformers)",
                 "BERTScore F1 of captions (layer 40, idf from the gold captions)")
MEDIMAGEINSIGHT = _hub("lion-ai/MedImageInsights", "transformers (image and text towers)",
                       "image-caption similarity 2.5 x max(cos, 0)")
# The ViT image tower of BiomedCLIP in transformers layout, the model the MEDVQA-GI 2025 organizers'
# scoring script loads (its CLS token is the feature of FID, agreement and diversity).
BIOMEDCLIP = _hub("ikim-uk-essen/BiomedCLIP_ViT_patch16_224", "transformers (ViT image tower)",
                  "CLS-token features of generated and real images (FID, agreement, diversity)")
# No command fetches the UMLS pack: it is handed out after a UMLS licence login (the organizers' README).
UMLS = ModelSpec("medcat/umls-model-pack", "medcat", "UMLS concepts of captions (concept F1)",
                 'unzip UMLS_PACK.zip -d "{target}"  # UMLS_PACK.zip: the MedCAT UMLS full model pack, downloaded '
                 'after a UMLS licence login at https://uts.nlm.nih.gov/uts/login?service=https://medcat.rosalind.kcl.ac.uk/auth-callback')
ALIGNSCORE = ModelSpec("yzha/AlignScore-large", "transformers (AlignScore nli_sp, RoBERTa)",
                       "AlignScore of a predicted caption against the gold caption",
                       'huggingface-cli download yzha/AlignScore AlignScore-large.ckpt --local-dir "{target}.ckpt" '
                       '&& python -m include.models.alignscore_convert "{target}.ckpt/AlignScore-large.ckpt" "{target}"')
BLEURT = _hub("lucadiliello/BLEURT-20-D12", "bleurt-pytorch", "BLEURT of captions (reported, not in relevance)")

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (BERTSCORE, MEDIMAGEINSIGHT, BIOMEDCLIP, UMLS, ALIGNSCORE, BLEURT)}


def split_model_names(needs_model: str | None) -> list[str]:
    """The model names of a registry ``needs_model`` entry (several joined by `` + ``)."""
    return [name.strip() for name in (needs_model or "").split(MODEL_SEPARATOR) if name.strip()]


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def models_for_metrics(metric_names: Iterable[str]) -> dict[str, list[str]]:
    """Model name -> the metrics (in the order given) that need it."""
    from include.metrics.registry import get_metric

    needed: dict[str, list[str]] = {}
    for metric in metric_names:
        for name in split_model_names(get_metric(metric).needs_model):
            needed.setdefault(name, []).append(metric)
    return needed
