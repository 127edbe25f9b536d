"""Write a finished comic: panel PNGs, page PNGs, one multi-page PDF, project.json and a zip.

Files in the output folder (panel numbers and page numbers are 1-based)::

    panel_01.png ...          the chosen candidate of each panel
    panel_01_c2.png ...       other candidates (only when candidates > 1)
    page_1.png ...            the laid-out pages
    comic.pdf                 every page on one A4 or Letter page each (pipelines.pdf), the
                              page PNGs embedded unchanged, title and author in its metadata
    project.json              see pipelines.project
    comic.zip                 project.json, panels/, pages/ and identities/<slug>-<hash>.safetensors
    comic.cbz                 the pages for comic readers plus ComicInfo.xml (see pipelines.cbz)

Every file is written to a temporary name first and renamed, so a crash never leaves a
half-written comic that looks complete.
"""

from __future__ import annotations

import io
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from configs import Limits
from core.files import FILE_MODE, write_bytes_atomic
from pipelines.cbz import CBZ_FILE, ComicInfo, cbz_bytes
from pipelines.pdf import write_pdf
from pipelines.project import PROJECT_FILE, Project, identity_bytes, identity_filename

PDF_FILE = "comic.pdf"
ZIP_FILE = "comic.zip"
#: zlib level of exported PNGs. Every generate, redraw and candidate choice re-exports the pages
#: on the server's shared CPU; level 1 encodes a 1600 px page ~4x faster than Pillow's default
#: 6 (0.3 s vs 1.3 s on a busy 2-core machine) for ~25% larger files. Still lossless.
PNG_COMPRESS_LEVEL = 1


class ExportError(OSError):
    """The output folder cannot be created or written (one-line message)."""


@dataclass(frozen=True)
class ExportedComic:
    """Paths of everything :func:`export_comic` wrote."""

    folder: Path
    panels: list[Path]
    pages: list[Path]
    pdf: Path
    project: Path
    zip: Path
    candidates: list[Path] = field(default_factory=list)
    cbz: Path | None = None


def panel_filename(index: int, candidate: int | None = None) -> str:
    """``panel_01.png`` for panel 0; ``panel_01_c2.png`` for its candidate 1 (both 1-based)."""
    suffix = "" if candidate is None else f"_c{candidate + 1}"
    return f"panel_{index + 1:02d}{suffix}.png"


def page_filename(number: int) -> str:
    """``page_1.png`` for page 1."""
    return f"page_{number}.png"


def ensure_writable(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it writable; ExportError with a one-line reason."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ExportError(f"cannot write to output folder '{folder}': {reason}") from None
    return folder


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG bytes of ``image`` (zlib level :data:`PNG_COMPRESS_LEVEL`)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def pdf_bytes(pages: Sequence[Image.Image | bytes], paper: str = "A4", title: str = "",
              author: str = "") -> bytes:
    """One PDF with one ``paper`` page (A4 or Letter) per comic page, each scaled to fit; PNG
    bytes are embedded without recompression (see :mod:`pipelines.pdf`)."""
    return write_pdf(pages, paper=paper, title=title, author=author)


def export_comic(folder: str | Path, project: Project, panels: Sequence[Image.Image],
                 pages: Sequence[Image.Image],
                 candidates: Mapping[tuple[int, int], Image.Image] | None = None,
                 identities: Mapping[str, Any] | None = None, writer: str = "",
                 paper: str = "A4") -> ExportedComic:
    """Write every file of a comic into ``folder`` (created if needed).

    Args:
        project: what to save as ``project.json`` (its ``choices`` say which candidate each
            panel image is).
        panels: the chosen image of each panel, in order.
        pages: the rendered pages.
        candidates: (panel, candidate) -> image for every candidate; those not chosen are saved
            as ``panel_NN_cK.png``.
        identities: name -> identity (``clip_l``/``clip_g``) of the cast, embedded in the zip so
            the project regenerates without the library. None embeds none.
        writer: who wrote the story: ``comic.cbz``'s ComicInfo Writer and ``comic.pdf``'s
            author ("" leaves them out; the PDF's title is the project's, else "Untitled comic").
        paper: the PDF's paper size, ``"A4"`` or ``"Letter"`` (``generation.pdf_paper``).
    """
    folder = ensure_writable(folder)
    if len(panels) != len(project.request.panels):
        raise ValueError(f"{len(panels)} panel images for {len(project.request.panels)} panels")
    choices = project.choices or (0,) * len(panels)
    files: dict[str, bytes] = {}
    panel_paths, candidate_paths, page_paths, page_pngs = [], [], [], []
    for i, image in enumerate(panels):
        data = png_bytes(image)
        panel_paths.append(write_bytes_atomic(folder / panel_filename(i), data))
        files[f"panels/{panel_filename(i)}"] = data
    for (i, c), image in sorted((candidates or {}).items()):
        if c == choices[i]:
            continue
        data = png_bytes(image)
        candidate_paths.append(write_bytes_atomic(folder / panel_filename(i, c), data))
        files[f"panels/{panel_filename(i, c)}"] = data
    for number, page in enumerate(pages, start=1):
        data = png_bytes(page)
        page_pngs.append(data)
        page_paths.append(write_bytes_atomic(folder / page_filename(number), data))
        files[f"pages/{page_filename(number)}"] = data
    pdf = write_bytes_atomic(folder / PDF_FILE, pdf_bytes(
        page_pngs, paper=paper, title=project.title or "Untitled comic", author=writer))
    project_text = project.to_json().encode("utf-8")
    project_path = write_bytes_atomic(folder / PROJECT_FILE, project_text)
    files[PROJECT_FILE] = project_text
    wanted = {" ".join(n.split()).lower() for n in project.cast}
    for name, identity in (identities or {}).items():
        if " ".join(name.split()).lower() in wanted:
            files[identity_filename(identity.name)] = identity_bytes(identity)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files, key=lambda n: (n != PROJECT_FILE, n)):
            member = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = FILE_MODE << 16   # unpacked files readable by others, not 0600
            archive.writestr(member, files[name])
    zip_path = write_bytes_atomic(folder / ZIP_FILE, buffer.getvalue())
    summary = project.story.strip() or " ".join(p.text for p in project.request.panels)
    info = ComicInfo(title=project.title, summary=summary, characters=tuple(project.cast),
                     writer=writer)
    cbz = write_bytes_atomic(folder / CBZ_FILE, cbz_bytes(page_pngs, info))
    return ExportedComic(folder=folder, panels=panel_paths, pages=page_paths, pdf=pdf,
                         project=project_path, zip=zip_path, candidates=candidate_paths, cbz=cbz)


@dataclass(frozen=True)
class SavedImages:
    """The pictures a project zip carries.

    Attributes:
        panels: (panel, candidate) -> image, both 0-based; the chosen candidate of panel i is
            stored as ``panels/panel_{i+1:02d}.png`` and found under ``(i, project.choices[i])``.
        pages: the rendered pages, in order.
    """

    panels: dict[tuple[int, int], Image.Image]
    pages: list[Image.Image]


_PANEL_RE = re.compile(r"panels/panel_(\d{2,3})(?:_c(\d{1,2}))?\.png")
_PAGE_RE = re.compile(r"pages/page_(\d{1,3})\.png")


def read_saved_images(path: str | Path, choices: Sequence[int], max_images: int = 400,
                      limits: Limits | None = None) -> SavedImages:
    """The panel, candidate and page images of a project zip written by :func:`export_comic`.

    Every read is bounded (``configs/limits.yaml``): the zip's directory (``zip_directory_bytes``,
    ``zip_members``), each picture's unpacked bytes (``picture_bytes``) within the zip's budget
    (``zip_read_bytes``), and each picture's pixels from its header before decoding
    (``picture_pixels``; all pictures together ``saved_pixels``). Files that are not such images,
    or that are refused or cannot be decoded, are skipped (the project still opens; the comic is
    then drawn again by Generate). At most ``max_images`` are read.
    """
    from configs import load_limits
    from core.pictures import PixelBudget, decode_picture
    from core.safe_read import ReadRefused, ZipBudget, open_zip, read_member

    limits = limits or load_limits()
    panels: dict[tuple[int, int], Image.Image] = {}
    pages: dict[int, Image.Image] = {}
    if not zipfile.is_zipfile(path):
        return SavedImages({}, [])
    source = Path(path).name
    try:
        archive = open_zip(path, limits)
    except ReadRefused:
        return SavedImages({}, [])
    budget, pixels = ZipBudget(limits.zip_read_bytes), PixelBudget(limits.saved_pixels)
    with archive:
        for info in archive.infolist()[:max_images * 2]:
            panel, page = _PANEL_RE.fullmatch(info.filename), _PAGE_RE.fullmatch(info.filename)
            if not (panel or page) or len(panels) + len(pages) >= max_images:
                continue
            try:
                data = read_member(archive, info, limits.picture_bytes, "picture_bytes", budget,
                                   limits, source)
                picture = decode_picture(data, f"{source}:{info.filename}", limits, pixels)
            except ReadRefused:  # too big, damaged or over a budget: skipped, not fatal
                continue
            if page:
                pages[int(page.group(1))] = picture
                continue
            index = int(panel.group(1)) - 1
            if panel.group(2) is not None:
                panels[(index, int(panel.group(2)) - 1)] = picture
            elif 0 <= index < len(choices):
                panels[(index, choices[index])] = picture
    return SavedImages(panels, [pages[k] for k in sorted(pages)])


__all__ = ["ExportError", "ExportedComic", "SavedImages", "read_saved_images", "ensure_writable", "export_comic", "page_filename",
           "panel_filename", "pdf_bytes", "png_bytes"]
