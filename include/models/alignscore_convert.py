"""Turn AlignScore's Lightning checkpoint into a transformers RoBERTa sequence classifier folder.

``python -m include.models.alignscore_convert AlignScore-large.ckpt OUT_DIR [TOKENIZER_DIR]``

AlignScore (Zha et al. 2023) is not on PyPI. Its model is a ``RobertaModel`` whose pooler output
goes through dropout and a 3-way linear head ``tri_layer`` (aligned, contradict, neutral); in
``nli_sp`` mode the score is the softmax probability of label 0. A transformers
``RobertaForSequenceClassification`` computes the same function in eval mode: its head is dense +
tanh (the pooler) then ``out_proj``. So ``base_model.pooler.dense`` becomes ``classifier.dense``,
``tri_layer`` becomes ``classifier.out_proj`` and ``base_model.*`` becomes ``roberta.*``; the other
heads (binary, regression, masked LM) are dropped. The tokenizer is roberta-large's
(``huggingface-cli download FacebookAI/roberta-large tokenizer.json vocab.json merges.txt
tokenizer_config.json --local-dir TOKENIZER_DIR``; default: the checkpoint's folder).
"""
from __future__ import annotations

import sys
from pathlib import Path


def convert_state(state: dict) -> dict:
    """AlignScore's ``state_dict`` keys to RobertaForSequenceClassification's."""
    converted = {}
    for key, value in state.items():
        key = key.removeprefix("model.")
        if key.startswith("base_model.pooler.dense."):
            converted["classifier.dense." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("base_model."):
            converted["roberta." + key[len("base_model."):]] = value
        elif key.startswith("tri_layer."):
            converted["classifier.out_proj." + key.rsplit(".", 1)[1]] = value
    return converted


def config_from_state(state: dict):
    from transformers import RobertaConfig

    embeddings = state["roberta.embeddings.word_embeddings.weight"]
    positions = state["roberta.embeddings.position_embeddings.weight"]
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("roberta.encoder.layer."))
    hidden = embeddings.shape[1]
    return RobertaConfig(vocab_size=embeddings.shape[0], hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=max(1, hidden // 64),
                         intermediate_size=state["roberta.encoder.layer.0.intermediate.dense.weight"].shape[0],
                         max_position_embeddings=positions.shape[0], type_vocab_size=state["roberta.embeddings.token_type_embeddings.weight"].shape[0],
                         num_labels=3, id2label={0: "aligned", 1: "contradict", 2: "neutral"},
                         label2id={"aligned": 0, "contradict": 1, "neutral": 2})


def convert(checkpoint: Path, out_dir: Path, tokenizer_dir: Path | None = None, heads: int | None = None) -> Path:
    import torch
    from transformers import AutoTokenizer, RobertaForSequenceClassification

    raw = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = convert_state(raw.get("state_dict", raw))
    config = config_from_state(state)
    if heads:
        config.num_attention_heads = heads
    model = RobertaForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise SystemExit(f"checkpoint {checkpoint} does not match: missing {missing[:5]}, unexpected {unexpected[:5]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(tokenizer_dir or checkpoint.parent, local_files_only=True).save_pretrained(out_dir)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    print(convert(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) == 4 else None))
