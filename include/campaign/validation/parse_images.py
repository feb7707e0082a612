"""Reading an archive of images (generated PNGs, TIFF masks) into one row per member.

Each member's name is matched against the schema's pattern (its named groups become columns),
then the image is opened with a decoder restricted to the expected format. The pixel count is
checked from the header before any pixel is decoded, so a small file claiming a huge image is
refused without allocating it. Masks are decoded and must be single-channel and binary.
"""
from __future__ import annotations

import io
import re
import warnings as python_warnings

import numpy as np
import pandas as pd

from include.campaign.validation.findings import Example, Findings, quoted
from include.campaign.validation.locate import MEMBER
from include.campaign.validation.schema import RunSchema
from include.campaign.validation.source import RunSource, iter_members



class ImageProblem(Exception):
    """A member that is not an acceptable image; the message is shown to the participant."""

    def __init__(self, rule: str, description: str, message: str):
        super().__init__(message)
        self.rule, self.description, self.message = rule, description, message


def png_size(data: bytes, max_pixels: int | None) -> tuple[int, int]:
    """(width, height) of a valid PNG; ``ImageProblem`` otherwise."""
    from PIL import Image

    try:
        with python_warnings.catch_warnings():
            python_warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                width, height = image.size
                check_pixels(width * height, max_pixels)
                image.verify()
    except ImageProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("image.too-large", "images stay within the pixel limit",
                           "the image declares more pixels than any decoder is allowed to allocate")
    # Pillow raises many exception types on hostile bytes (OSError, SyntaxError, ValueError,
    # struct.error, ...); every one means "not a readable PNG" to the participant.
    except Exception as error:
        raise ImageProblem("image.unreadable", "every member is a readable PNG image",
                           f"not a readable PNG image ({type(error).__name__}: {str(error)[:100]})")
    return width, height


def check_pixels(pixels: int, max_pixels: int | None) -> None:
    if max_pixels is not None and pixels > max_pixels:
        raise ImageProblem("image.too-large", f"images hold at most {max_pixels} pixels",
                           f"the image holds {pixels} pixels, over the limit of {max_pixels}")


def binary_mask(data: bytes, max_pixels: int | None, on_value: int | None = None) -> np.ndarray:
    """The mask as a 2-D bool array; ``ImageProblem`` when not a single-channel binary TIFF (whose
    marked pixels equal ``on_value`` when given)."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            if len(tiff.pages) != 1:
                raise ImageProblem("mask.pages", "a mask is a single-page TIFF",
                                   f"the TIFF holds {len(tiff.pages)} pages; a mask is a single page")
            page = tiff.pages[0]
            check_pixels(int(np.prod(page.shape)), max_pixels)
            pixels = page.asarray()
    except ImageProblem:
        raise
    # tifffile raises TiffFileError, ValueError, KeyError, struct.error, ... on hostile bytes.
    except Exception as error:
        raise ImageProblem("image.unreadable", "every member is a readable TIFF image",
                           f"not a readable TIFF image ({type(error).__name__}: {str(error)[:100]})")
    pixels = np.squeeze(pixels)
    if pixels.ndim != 2:
        raise ImageProblem("mask.single-channel", "a mask is a single-channel 2-D image",
                           f"the mask has shape {tuple(pixels.shape)}; a mask is one channel of height x width")
    return to_bool(pixels, on_value)


def to_bool(pixels: np.ndarray, on_value: int | None = None) -> np.ndarray:
    if pixels.dtype == bool:
        return pixels
    on = pixels != 0
    on_values = pixels[on]
    if on_values.size and not (on_values == on_values[0]).all():
        shown_values = ", ".join(str(v) for v in np.unique(pixels)[:6])
        expected = f"0 and {on_value}" if on_value is not None else "0 and one other value (1 or 255)"
        raise ImageProblem("mask.binary", f"a mask is binary: {expected}",
                           f"the mask is not binary: its pixel values include {shown_values}")
    if on_value is not None and on_values.size and on_values[0] != on_value:
        raise ImageProblem("mask.values", f"mask pixels are {on_value} on the lesion and 0 elsewhere",
                           f"the mask's pixels are 0 and {on_values[0]}; the organizers' scorer counts only pixels "
                           f"equal to {on_value} (a 0/{on_values[0]} mask scores 0 there): write {on_value} for the "
                           f"lesion and 0 elsewhere, e.g. tifffile.imwrite(name, (mask > 0).astype('uint8'))")
    return on


def read_images(source: RunSource, members, schema: RunSchema, findings: Findings) -> pd.DataFrame:
    """One row per member whose name matches: name groups, width, height (and mask)."""
    spec = schema.file
    pattern = re.compile(spec.name_pattern)
    groups = list(pattern.groupindex)
    rows: list[dict] = []
    for member in members:
        match = pattern.fullmatch(member.name)
        if match is None:
            findings.add("archive.member-name", f"every member is named {spec.name_hint}", Example(
                file=source.display_name, member=member.name,
                message=f"member {quoted(member.name)} is not named {spec.name_hint}"))
    for member, data in iter_members(source, [m for m in members if pattern.fullmatch(m.name)]):
        row = {MEMBER: member.name, "member": member.name, "width": None, "height": None}
        row.update(pattern.fullmatch(member.name).groupdict())
        try:
            if spec.type == "png":
                row["width"], row["height"] = png_size(data, spec.max_pixels)
            else:
                mask = binary_mask(data, spec.max_pixels, spec.mask_on_value)
                row["mask"] = mask
                row["height"], row["width"] = mask.shape
        except ImageProblem as problem:
            findings.add(problem.rule, problem.description, Example(
                file=source.display_name, member=member.name, message=f"member {quoted(member.name)}: {problem.message}"))
        rows.append(row)
    columns = [MEMBER, "member", *groups, "width", "height"] + (["mask"] if spec.type == "tiff" else [])
    frame = pd.DataFrame(rows, columns=columns).astype({"width": object, "height": object})
    for field in schema.fields:
        if field.canonical == "int" and field.name in frame:
            frame[field.name] = frame[field.name].map(int, na_action="ignore")
    return frame
