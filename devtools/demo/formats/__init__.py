"""One demo-data generator per run format, looked up by the format's name in the campaign file."""
from __future__ import annotations

from devtools.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial
from devtools.demo.formats.captions import CaptionPrediction, ConceptDetection
from devtools.demo.formats.gans import GansAttribution, GansDetection
from devtools.demo.formats.magic import MagicClosedVqa, MagicSegmentation
from devtools.demo.formats.reasoning import MultimodalReasoning
from devtools.demo.formats.topicto import ToPicto
from devtools.demo.formats.touche import ToucheRetrieval
from devtools.demo.formats.vqa import VqaAnswering, VqaSynthesis

GENERATORS: dict[str, type[FormatGenerator]] = {
    generator.run_format: generator
    for generator in (ConceptDetection, CaptionPrediction, GansDetection, GansAttribution, VqaAnswering,
                      VqaSynthesis, MagicSegmentation, MagicClosedVqa, ToucheRetrieval, ToPicto, MultimodalReasoning)
}


def generator_for(run_format: str) -> FormatGenerator:
    """The generator of a run format; ``KeyError`` names the formats that have one."""
    try:
        return GENERATORS[run_format]()
    except KeyError:
        raise KeyError(f"no demo-data generator for run format {run_format!r}; "
                       f"formats with one: {', '.join(sorted(GENERATORS))}") from None


__all__ = ["FormatGenerator", "GENERATORS", "InvalidRun", "SplitMaterial", "generator_for"]
