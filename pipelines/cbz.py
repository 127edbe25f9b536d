"""``comic.cbz``: the pages for comic readers (YACReader, Komga, Kavita, CDisplayEx).

A CBZ is a zip of page images that readers show in file-name order, plus an optional
``ComicInfo.xml`` with the book's metadata. This module writes:

    001.png, 002.png ...     the laid-out pages in reading order (zero-padded, at least 3 digits)
    ComicInfo.xml            ComicInfo schema 2.0 (the Anansi Project's ``ComicInfo.xsd``)

``ComicInfo.xml`` holds Title, Summary (the story, else the panel sentences), Notes, Writer
(when known), PageCount, Manga (``No``: read left to right), Characters (the cast, comma
separated) and Pages (one ``Page`` per image: ``Image`` is the 0-based index, ``Type`` is
``FrontCover`` for the first page and ``Story`` after it, ``ImageSize`` in bytes,
``ImageWidth``/``ImageHeight`` in pixels). Elements appear in the order of the schema's
``xs:sequence`` (:data:`COMICINFO_ORDER`), which strict readers require; empty values are left out.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree

from PIL import Image

from core.files import FILE_MODE

CBZ_FILE = "comic.cbz"
COMICINFO_FILE = "ComicInfo.xml"
#: The ``ComicInfo`` element's children in the order of the 2.0 schema's ``xs:sequence``.
COMICINFO_ORDER = (
    "Title", "Series", "Number", "Count", "Volume", "AlternateSeries", "AlternateNumber",
    "AlternateCount", "Summary", "Notes", "Year", "Month", "Day", "Writer", "Penciller", "Inker",
    "Colorist", "Letterer", "CoverArtist", "Editor", "Publisher", "Imprint", "Genre", "Web",
    "PageCount", "LanguageISO", "Format", "BlackAndWhite", "Manga", "Characters", "Teams",
    "Locations", "ScanInformation", "StoryArc", "SeriesGroup", "AgeRating", "Pages",
    "CommunityRating")
NOTES = "Drawn with Comic Identity (StableIdentity on SDXL)."


@dataclass(frozen=True)
class ComicInfo:
    """The metadata written to ``ComicInfo.xml``.

    Attributes:
        title: the comic's title ("" leaves the element out).
        summary: the story text (or the panel sentences joined).
        characters: the cast, in cast order.
        writer: who wrote the story ("" leaves it out).
        notes: a free-form note (the app that drew it).
    """

    title: str = ""
    summary: str = ""
    characters: tuple[str, ...] = ()
    writer: str = ""
    notes: str = NOTES


def page_name(index: int, total: int) -> str:
    """``001.png`` for page index 0: 1-based, zero-padded to at least 3 digits (and to the width
    of ``total``) so that name order is reading order."""
    width = max(3, len(str(total)))
    return f"{index + 1:0{width}d}.png"


def comicinfo_xml(info: ComicInfo, pages: Sequence[tuple[int, int, int]]) -> bytes:
    """The UTF-8 ``ComicInfo.xml`` for ``pages``: one (width px, height px, size bytes) per page."""
    root = ElementTree.Element("ComicInfo", {
        "xmlns:xsd": "http://www.w3.org/2001/XMLSchema",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance"})
    values = {"Title": info.title.strip(), "Summary": info.summary.strip(),
              "Notes": info.notes.strip(), "Writer": info.writer.strip(),
              "PageCount": str(len(pages)), "Manga": "No",
              "Characters": ", ".join(" ".join(n.split()) for n in info.characters)}
    for name in COMICINFO_ORDER:
        if name == "Pages":
            element = ElementTree.SubElement(root, "Pages")
            for i, (width, height, size) in enumerate(pages):
                ElementTree.SubElement(element, "Page", {
                    "Image": str(i), "Type": "FrontCover" if i == 0 else "Story",
                    "ImageSize": str(size), "ImageWidth": str(width), "ImageHeight": str(height)})
        elif values.get(name):
            ElementTree.SubElement(root, name).text = values[name]
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def cbz_bytes(pages: Sequence[bytes], info: ComicInfo) -> bytes:
    """The CBZ archive: ``ComicInfo.xml`` first, then the pages in reading order.

    Args:
        pages: the laid-out pages as encoded PNG bytes, first page first (the exporter's
            own page files, so nothing is encoded twice; sizes are read from the headers).
    """
    if not pages:
        raise ValueError("a CBZ needs at least one page")
    sizes = []
    for data in pages:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            sizes.append((image.width, image.height, len(data)))
    members = [(COMICINFO_FILE, comicinfo_xml(info, sizes), zipfile.ZIP_DEFLATED)]
    members += [(page_name(i, len(pages)), data, zipfile.ZIP_STORED)  # PNG is already compressed
                for i, data in enumerate(pages)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, compression in members:
            member = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
            member.compress_type = compression
            member.external_attr = FILE_MODE << 16
            archive.writestr(member, data)
    return buffer.getvalue()


__all__ = ["CBZ_FILE", "COMICINFO_FILE", "COMICINFO_ORDER", "ComicInfo", "cbz_bytes",
           "comicinfo_xml", "page_name"]
