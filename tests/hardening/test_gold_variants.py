"""Gold staged with other line endings, a byte-order mark or another Unicode encoding is still withheld.

The release compared bytes only, so a copy of the ground truth saved on Windows (CRLF), by an
editor that adds a BOM, or as UTF-16 was published. The variants are made here from a gold file.
"""
from __future__ import annotations

import codecs

import pytest

from include.campaign.release import release
from tests.lifecycle.conftest import register, stage

GOLD = "id,label\nimg-001,1\nimg-002,0\nimg-003,1\n"
VARIANTS = {
    "crlf.csv": GOLD.replace("\n", "\r\n").encode(),
    "cr.csv": GOLD.replace("\n", "\r").encode(),
    "bom.csv": codecs.BOM_UTF8 + GOLD.encode(),
    "bom-crlf-no-final-newline.csv": codecs.BOM_UTF8 + GOLD.rstrip("\n").replace("\n", "\r\n").encode(),
    "utf16.csv": codecs.BOM_UTF16_LE + GOLD.replace("\n", "\r\n").encode("utf-16-le"),
    "trailing-blank-lines.csv": (GOLD + "\n\n  \n").encode(),
}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))


def test_every_text_variant_of_gold_is_withheld_and_other_files_are_released(ctx, store, mailbox):
    register(ctx, "Gold Watchers", "watch@team.example.org", ["beta"])
    store.put_bytes(ctx.layout.gold("beta", "test") + "labels.csv", GOLD.encode())
    other_text = GOLD.replace("img-003,1", "img-003,0").replace("\n", "\r\n").encode()  # differs in content
    stage(ctx, "beta", "dev", {**VARIANTS, "images/1.png": PNG, "near-miss.csv": other_text})

    outcome = release(ctx, "beta", "dev")

    withheld = {item["path"]: item["reason"] for item in outcome["withheld"]}
    assert sorted(withheld) == sorted(VARIANTS)
    for reason in withheld.values():
        assert reason.startswith("same text as the ground-truth object lifecycle/gold/beta/test/labels.csv")
    assert sorted(outcome["released"]) == ["images/1.png", "near-miss.csv"]
    released = store.list_keys(ctx.layout.releases("beta", "dev"))
    assert not any(key.endswith(name) for key in released for name in VARIANTS)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
def test_the_normalised_digest_does_not_depend_on_chunk_boundaries(chunk):
    from include.campaign.release import NormalisedText

    def digest(data: bytes) -> str | None:
        text = NormalisedText()
        for start in range(0, len(data), chunk):
            text.feed(data[start:start + chunk])
        return text.hexdigest()

    expected = digest(GOLD.encode())
    assert expected is not None
    assert {name: digest(data) for name, data in VARIANTS.items()} == {name: expected for name in VARIANTS}
    assert digest(PNG) is None  # binary: never compared as text
    assert digest(b"") is None


def test_a_gold_object_whose_name_leaves_the_gold_folder_is_refused(ctx, store):
    from include.campaign.evaluation.gold import gold_copy
    from include.campaign.evaluation.records import ScoringError

    prefix = ctx.layout.gold("beta", "test")
    store.put_bytes(prefix + "labels.csv", GOLD.encode())
    store.put_bytes(prefix + "../../escape.csv", GOLD.encode())

    with pytest.raises(ScoringError, match=r"gold object '.*/test/\.\./\.\./escape\.csv' has an unsafe name; rename it"):
        gold_copy(ctx, "beta")
