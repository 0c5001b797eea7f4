"""Listing the image files of a folder ourselves: no image is dropped on the way.

datumaro's folder readers key items by file stem (``rocket.png`` and ``rocket.jpg`` collide: a
RepeatedItemError, or one of them silently dropped in class folders), know no ``.gif`` and pass
non-UTF-8 names and symlink loops on to whatever reads them next. Here every non-hidden file of a plain
folder (recursively; symlinked folders are not followed) becomes a record, and in class folders every one
with an image suffix: what cannot be decoded is skipped at read time with its reason in the index, so the
index lists every file exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path

from otx_xai.data.records import unique_ids

# Suffixes that make a folder's top level a plain folder of images (datumaro's list, plus .gif).
IMAGE_SUFFIXES = frozenset({
    ".bmp", ".dib", ".exr", ".gif", ".hdr", ".jp2", ".jpe", ".jpeg", ".jpg", ".pbm", ".pfm", ".pgm", ".pic",
    ".png", ".pnm", ".ppm", ".pxm", ".ras", ".sr", ".tga", ".tif", ".tiff", ".webp",
})
BOXES_FILE = "boxes.json"  # ground-truth boxes of a classification folder: data, not an image


def is_hidden(name: str) -> bool:
    """Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``) are never inputs."""
    return name.startswith(".")


def folder_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder`` (recursively, symlinked folders not followed), sorted by path;
    a symlink to a file or a broken / looping symlink counts as a file (reading it says what is wrong)."""
    found = []
    for directory, subdirs, names in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not is_hidden(d))
        found += [Path(directory) / name for name in names if not is_hidden(name)]
    return sorted(found, key=str)


def plain_folder_files(root: Path) -> list[Path]:
    """The inputs of a plain folder: every file but the ``boxes.json`` at its root."""
    return [path for path in folder_files(root) if path != root / BOXES_FILE]


def has_images_at_top(root: Path) -> bool:
    """Whether ``root`` holds image files directly (a plain folder, not class folders)."""
    return any(not is_hidden(entry.name) and entry.suffix.lower() in IMAGE_SUFFIXES and not entry.is_dir()
               for entry in root.iterdir())


def class_folders(root: Path) -> list[str]:
    """The class folder names under ``root`` (its non-hidden sub-folders), sorted: the label names."""
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not is_hidden(entry.name))


def relative_ids(paths: list[Path], root: Path) -> list[str]:
    """Ids from the paths relative to ``root`` without their suffix, sanitized to ``[A-Za-z0-9_]`` and made
    unique (``rocket.jpg`` → ``rocket``, ``rocket.png`` → ``rocket_2``)."""
    return unique_ids([str(path.relative_to(root).with_suffix("")) for path in paths])
