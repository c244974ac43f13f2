"""Image stores that decode files lazily: one image per file, or one file per channel.

Files are decoded with PIL into HWC uint8. A file keeps its own channels
(grayscale -> 1, colour -> 3) with any alpha dropped, unless `data.image_mode`
asks for L (1), RGB (3) or RGBA (4) channels for every file. Deeper pixels
(16-bit, float) are brought to 0..255 by `to_uint8`. A missing or undecodable
file is a `DataError` whose source is the file, with the manifest line that
listed it when there is one.

A store's `decode` is the smallest (height, width) the resize needs
(`trainables.resize`): a JPEG is then decoded at 1/2, 1/4 or 1/8 scale when
that is still at least as large (PIL's `Image.draft`, libjpeg's DCT scaling),
so a 4000 px photograph costs a fraction of a full decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from raysweep.errors import DataError
from trainables.data.samples import to_uint8

# What `image_folder` lists; other files in a class folder (notes, thumbnails) are skipped.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})

_DEEP_GRAY = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}  # one channel, more than 8 bits
_NATURAL = {"1": "L", "L": "L", "LA": "L", "La": "L"}  # every other mode decodes to RGB
MODE_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


Size = tuple[int, int]  # (height, width)


def _open(path: Path, mode: Optional[str], listed: str, decode: Optional[Size] = None):
    from PIL import Image, UnidentifiedImageError

    where = f" ({listed})" if listed else ""
    try:
        with Image.open(path) as im:
            if decode is not None and im.format == "JPEG":
                im.draft(im.mode, (decode[1], decode[0]))  # keeps both sides >= the box's
            im.load()
            if im.mode in _DEEP_GRAY:  # PIL's own I;16 -> L conversion clips at 255 instead of scaling
                deep = np.asarray(im)
                im = Image.fromarray(to_uint8(deep if im.mode == "F" else np.clip(deep, 0, 65535).astype(np.uint16)))
            target = mode or _NATURAL.get(im.mode, "RGB")
            return np.asarray(im if im.mode == target else im.convert(target))
    except FileNotFoundError:
        raise DataError(f"no such file{where}", source=str(path)) from None
    except UnidentifiedImageError:
        raise DataError(f"not an image file PIL can read{where}", source=str(path)) from None
    except (OSError, ValueError, SyntaxError) as e:  # truncated or corrupt data
        raise DataError(f"cannot decode image: {e}{where}", source=str(path)) from None


def read_image(path: Path, mode: Optional[str] = None, listed: str = "", decode: Optional[Size] = None) -> np.ndarray:
    """The file at `path` as HWC uint8; `listed` says where the path came from;
    `decode`: a JPEG may be decoded smaller, down to this (height, width)."""
    pixels = _open(path, mode, listed, decode)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def read_plane(path: Path, listed: str = "", decode: Optional[Size] = None) -> np.ndarray:
    """One channel file as HW uint8. A colour file is reduced by its brightest
    channel rather than by luminance: channel files are often saved tinted
    (a red image holding only the red stain), and max keeps their full range."""
    pixels = read_image(path, None, listed, decode)
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels.max(axis=2)


@dataclass
class FileStore:
    """One image file per sample."""

    paths: list[Path]
    mode: Optional[str] = None  # data.image_mode
    listed: Optional[list[str]] = None  # per sample, the manifest line that names the file
    decode: Optional[Size] = None  # the smallest size the resize needs (JPEG draft mode)

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> np.ndarray:
        return read_image(self.paths[i], self.mode, self.listed[i] if self.listed else "", self.decode)

    def name(self, i: int) -> str:
        return str(self.paths[i])


@dataclass
class ChannelStore:
    """One grayscale file per channel per sample, stacked in `channels` order."""

    root: Path
    ids: list[str]
    channels: list[str]
    pattern: str  # data.channel_pattern, with {id} and {channel}
    listed: Optional[list[str]] = None
    decode: Optional[Size] = None

    def __len__(self) -> int:
        return len(self.ids)

    def path(self, i: int, channel: str) -> Path:
        return self.root / self.pattern.format(id=self.ids[i], channel=channel)

    def load(self, i: int) -> np.ndarray:
        listed = self.listed[i] if self.listed else ""
        planes = [read_plane(self.path(i, ch), listed, self.decode) for ch in self.channels]
        for ch, plane in zip(self.channels[1:], planes[1:]):
            if plane.shape != planes[0].shape:
                first = self.path(i, self.channels[0])
                raise DataError(f"is {plane.shape[0]}x{plane.shape[1]} but {first} is {planes[0].shape[0]}x{planes[0].shape[1]}", source=str(self.path(i, ch)))
        return np.stack(planes, axis=2)

    def name(self, i: int) -> str:
        return str(self.root / self.pattern.format(id=self.ids[i], channel="{" + ",".join(self.channels) + "}"))
