"""One demo-data generator per run format, looked up by the format's name in the campaign file."""
from __future__ import annotations

from include.demo.formats.base import FormatGenerator, InvalidRun, SplitMaterial
from include.demo.formats.captions import CaptionPrediction, ConceptDetection
from include.demo.formats.gans import GansAttribution, GansDetection
from include.demo.formats.magic import MagicClosedVqa, MagicSegmentation
from include.demo.formats.reasoning import MultimodalReasoning
from include.demo.formats.topicto import ToPicto
from include.demo.formats.touche import ToucheRetrieval
from include.demo.formats.vqa import VqaAnswering, VqaSynthesis

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
