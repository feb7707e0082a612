"""Loading each kind of model from its folder with the model's own library, hub access off.

torch, transformers, bert-score, open_clip, bleurt-pytorch and medcat are imported inside the
functions: only a process that scores a model metric (the ``models`` worker) ever imports them.
Every loader goes through :func:`include.models.store.cached`, so a process loads a model once.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.models.store import cached

logger = logging.getLogger(__name__)


class ModelUnusable(Exception):
    """The model's folder exists but its library is not installed or its layout is not one we load."""


# --- BERTScore ----------------------------------------------------------------------------------------


@dataclass
class BertScoreModel:
    scorer: Any  # bert_score.BERTScorer, idf on, idf weights set per call
    num_layers: int
    lock: threading.Lock = field(default_factory=threading.Lock)


def bertscore_layers(name: str, folder: Path) -> int:
    """bert-score's own layer for the model name (40 for deberta-xlarge-mnli); the last layer of a
    smaller model put in its place (a test model) when it has fewer layers than that."""
    from bert_score.utils import model2layers

    layers = json.loads((folder / "config.json").read_text()).get("num_hidden_layers")
    wanted = model2layers.get(name, layers)
    if layers is not None and wanted > layers:
        logger.warning("model %s in %s has %d layers, fewer than bert-score's layer %d for that name: using the last one",
                       name, folder, layers, wanted)
        return int(layers)
    return int(wanted)


def bertscore_model(name: str, folder: Path, batch_size: int = 64) -> BertScoreModel:
    def load(path: Path) -> BertScoreModel:
        from bert_score import BERTScorer

        layers = bertscore_layers(name, path)
        # nthreads=0: idf counts in this process. bert-score's default forks a multiprocessing Pool, which
        # deadlocks in a process that already runs threads (Airflow's task runner, the tokenizers' pool).
        scorer = BERTScorer(model_type=str(path), num_layers=layers, idf=True, batch_size=batch_size, nthreads=0,
                            use_fast_tokenizer=True, device="cpu" if not _cuda() else None)
        return BertScoreModel(scorer, layers)

    return cached("bertscore", folder, load)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device() -> str:
    return "cuda" if _cuda() else "cpu"


# --- image and text towers (MedImageInsight, BiomedCLIP, test CLIP models) --------------------------


@dataclass
class ImageTextModel:
    """Image and text embeddings of one model; ``kind`` is ``transformers`` or ``open_clip``."""

    kind: str
    model: Any
    image_processor: Any
    tokenizer: Any = None
    max_text_length: int = 77

    def image_features(self, images: list, batch_size: int = 32):
        """(n, d) float64 numpy features of PIL images, in order."""
        import numpy as np
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = [image.convert("RGB") for image in images[start:start + batch_size]]
                if self.kind == "open_clip":
                    pixels = torch.stack([self.image_processor(image) for image in batch]).to(_device())
                    features = self.model.encode_image(pixels)
                else:
                    pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"].to(_device())
                    features = _transformers_image_features(self.model, pixels)
                chunks.append(features.double().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0))

    def text_features(self, texts: list[str], batch_size: int = 64):
        import numpy as np
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = list(texts[start:start + batch_size])
                if self.kind == "open_clip":
                    features = self.model.encode_text(self.tokenizer(batch).to(_device()))
                else:
                    tokens = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_text_length,
                                            return_tensors="pt").to(_device())
                    features = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
                chunks.append(features.double().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0))


def _transformers_image_features(model, pixels):
    if hasattr(model, "get_image_features"):
        return model.get_image_features(pixel_values=pixels)
    output = model(pixel_values=pixels)
    for attribute in ("image_embeds", "pooler_output"):
        if getattr(output, attribute, None) is not None:
            return getattr(output, attribute)
    raise ModelUnusable(f"{type(model).__name__} gives no image embedding (image_embeds or pooler_output)")


def image_text_model(name: str, folder: Path) -> ImageTextModel:
    """An open_clip model (``open_clip_config.json``, as BiomedCLIP ships) or a transformers one (``config.json``)."""

    def load(path: Path) -> ImageTextModel:
        if (path / "open_clip_config.json").is_file():
            return _open_clip_model(path)
        if (path / "config.json").is_file():
            return _transformers_image_text_model(path)
        raise ModelUnusable(f"model {name} in {path} has neither open_clip_config.json (open_clip) nor config.json "
                            "(transformers); MedImageInsight's own loader is not installed: put the model there in one of these layouts")

    return cached("image-text", folder, load)


def _open_clip_model(path: Path) -> ImageTextModel:
    try:
        import open_clip
    except ImportError:
        raise ModelUnusable("open_clip is not installed (pip install -r requirements-models.txt)") from None
    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{path}")
    model.eval().to(_device())
    return ImageTextModel("open_clip", model, preprocess, open_clip.get_tokenizer(f"local-dir:{path}"))


def _transformers_image_text_model(path: Path) -> ImageTextModel:
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(_device())
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    tokenizer = None
    if (path / "tokenizer_config.json").is_file() or (path / "tokenizer.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    text_config = getattr(model.config, "text_config", None)
    length = getattr(text_config, "max_position_embeddings", None) or 77
    return ImageTextModel("transformers", model, processor, tokenizer, int(length))


# --- vision CLS-token features (the MEDVQA-GI synthesis metrics) ------------------------------------


@dataclass
class VisionTokenModel:
    """A transformers vision encoder whose features are ``last_hidden_state[:, 0, :]`` (the CLS token)."""

    encoder: Any
    image_processor: Any

    def cls_features(self, images: list, batch_size: int = 32):
        """(n, d) float64 numpy CLS-token features of PIL images (converted to RGB), in order."""
        import numpy as np
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = [image.convert("RGB") for image in images[start:start + batch_size]]
                pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"].to(_device())
                hidden = self.encoder(pixel_values=pixels).last_hidden_state
                chunks.append(hidden[:, 0, :].double().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0))


def vision_token_model(name: str, folder: Path) -> VisionTokenModel:
    """The transformers model in ``folder`` (``AutoModel``, e.g. a ViT); a two-tower CLIP model gives its
    vision tower, whose output is the same as ``CLIPVisionModel``'s. Remote code is never run."""

    def load(path: Path) -> VisionTokenModel:
        from transformers import AutoImageProcessor, AutoModel

        if not (path / "config.json").is_file():
            raise ModelUnusable(f"model {name} in {path} has no config.json: a transformers vision model is needed "
                                "(as ikim-uk-essen/BiomedCLIP_ViT_patch16_224 ships)")
        model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(_device())
        encoder = getattr(model, "vision_model", model)
        return VisionTokenModel(encoder, AutoImageProcessor.from_pretrained(path, local_files_only=True))

    return cached("vision-token", folder, load)


# --- AlignScore (nli_sp) and BLEURT: sequence classifiers -------------------------------------------


@dataclass
class SequenceClassifier:
    model: Any
    tokenizer: Any
    max_length: int


def alignscore_model(name: str, folder: Path) -> SequenceClassifier:
    """AlignScore's RoBERTa with its 3-way head as a transformers sequence classifier (label 0 = aligned)."""

    def load(path: Path) -> SequenceClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True).eval().to(_device())
        if model.config.num_labels != 3:
            raise ModelUnusable(f"model {name} in {path} has {model.config.num_labels} labels; AlignScore's nli_sp "
                                "head has 3 (aligned, contradict, neutral)")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return SequenceClassifier(model, tokenizer, min(512, int(tokenizer.model_max_length)))

    return cached("alignscore", folder, load)


def bleurt_model(name: str, folder: Path) -> SequenceClassifier:
    def load(path: Path) -> SequenceClassifier:
        try:
            from bleurt_pytorch import BleurtForSequenceClassification, BleurtTokenizer
        except ImportError:
            raise ModelUnusable("bleurt-pytorch is not installed on this worker (pip install -r requirements-models.txt)") from None
        model = BleurtForSequenceClassification.from_pretrained(path, local_files_only=True).eval().to(_device())
        tokenizer = BleurtTokenizer.from_pretrained(path, local_files_only=True)
        return SequenceClassifier(model, tokenizer, min(512, int(getattr(tokenizer, "model_max_length", 512) or 512)))

    return cached("bleurt", folder, load)


# --- UMLS concepts (MedCAT) ------------------------------------------------------------------------------


def medcat_model(name: str, folder: Path):
    """The unzipped MedCAT model pack at ``folder`` (medcat 2 converts a MedCAT v1 pack, such as the
    organizers' UMLS pack, while loading it); :class:`ModelUnusable` when medcat is not installed."""

    def load(path: Path):
        try:
            from medcat.cat import CAT
        except ImportError:
            raise ModelUnusable("medcat is not installed on this worker (make venv; the models image has it)") from None
        return CAT.load_model_pack(str(path))

    return cached("medcat", folder, load)
