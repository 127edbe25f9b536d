"""comic.cbz: pages in reading order plus a ComicInfo.xml that follows the ComicInfo 2.0 schema.

The checker below is written from the Anansi Project's schema documentation
(https://anansi-project.github.io/docs/comicinfo/schemas/v2.0): the ``ComicInfo`` element's
children form an ``xs:sequence`` (each at most once, in that order), with these types; ``Pages``
holds ``Page`` elements whose attributes are typed too.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

from pipelines.cbz import CBZ_FILE, COMICINFO_FILE, ComicInfo, cbz_bytes, page_name
from pipelines.export import export_comic, png_bytes
from pipelines.project import ComicRequest, PanelSpec, Project

_STRING = "string"
#: The 2.0 sequence: (element, type). Types: string, int, YesNo, Manga, AgeRating, Pages, Rating.
SCHEMA_2_0 = [
    ("Title", _STRING), ("Series", _STRING), ("Number", _STRING), ("Count", "int"),
    ("Volume", "int"), ("AlternateSeries", _STRING), ("AlternateNumber", _STRING),
    ("AlternateCount", "int"), ("Summary", _STRING), ("Notes", _STRING), ("Year", "int"),
    ("Month", "int"), ("Day", "int"), ("Writer", _STRING), ("Penciller", _STRING),
    ("Inker", _STRING), ("Colorist", _STRING), ("Letterer", _STRING), ("CoverArtist", _STRING),
    ("Editor", _STRING), ("Publisher", _STRING), ("Imprint", _STRING), ("Genre", _STRING),
    ("Web", _STRING), ("PageCount", "int"), ("LanguageISO", _STRING), ("Format", _STRING),
    ("BlackAndWhite", "YesNo"), ("Manga", "Manga"), ("Characters", _STRING), ("Teams", _STRING),
    ("Locations", _STRING), ("ScanInformation", _STRING), ("StoryArc", _STRING),
    ("SeriesGroup", _STRING), ("AgeRating", "AgeRating"), ("Pages", "Pages"),
    ("CommunityRating", "Rating")]
ENUMS = {
    "YesNo": {"Unknown", "No", "Yes"},
    "Manga": {"Unknown", "No", "Yes", "YesAndRightToLeft"},
    "AgeRating": {"Unknown", "Adults Only 18+", "Early Childhood", "Everyone", "Everyone 10+", "G",
                  "Kids to Adults", "M", "MA15+", "Mature 17+", "PG", "R18+", "Rating Pending",
                  "Teen", "X18+"},
}
PAGE_TYPES = {"FrontCover", "InnerCover", "Roundup", "Story", "Advertisement", "Editorial",
              "Letters", "Preview", "BackCover", "Other", "Deleted"}
PAGE_ATTRIBUTES = {"Image": "int", "Type": "PageType", "DoublePage": "boolean", "ImageSize": "long",
                   "ImageWidth": "int", "ImageHeight": "int", "Key": _STRING, "Bookmark": _STRING}
XSI_NAMESPACE = "{http://www.w3.org/2001/XMLSchema-instance}"


def _is_int(text: str | None, bits: int = 32) -> bool:
    try:
        value = int(text or "")
    except ValueError:
        return False
    return -(2 ** (bits - 1)) <= value < 2 ** (bits - 1) and text.strip() == text


def check_comicinfo(xml: bytes) -> list[str]:
    """Every way ``xml`` breaks the ComicInfo 2.0 schema (empty: it conforms)."""
    problems: list[str] = []
    root = ElementTree.fromstring(xml)
    if root.tag != "ComicInfo":
        return [f"root element is {root.tag}, not ComicInfo"]
    order = [name for name, _ in SCHEMA_2_0]
    types = dict(SCHEMA_2_0)
    last = -1
    for child in root:
        if child.tag not in types:
            problems.append(f"unknown element {child.tag}")
            continue
        position = order.index(child.tag)
        if position <= last:
            problems.append(f"{child.tag} is out of the schema's order (or repeated)")
        last = max(last, position)
        kind = types[child.tag]
        if kind == "int" and not _is_int(child.text):
            problems.append(f"{child.tag} is not an xs:int: {child.text!r}")
        elif kind in ENUMS and child.text not in ENUMS[kind]:
            problems.append(f"{child.tag} is not a {kind}: {child.text!r}")
        elif kind == _STRING and len(child):
            problems.append(f"{child.tag} must be text, has child elements")
        elif kind == "Pages":
            problems += _check_pages(child)
    return problems


def _check_pages(pages: ElementTree.Element) -> list[str]:
    problems = []
    for page in pages:
        if page.tag != "Page":
            problems.append(f"Pages holds {page.tag}, not Page")
            continue
        if "Image" not in page.attrib:
            problems.append("a Page has no Image attribute (required)")
        for name, value in page.attrib.items():
            kind = PAGE_ATTRIBUTES.get(name)
            if kind is None:
                problems.append(f"unknown Page attribute {name}")
            elif kind == "int" and not _is_int(value):
                problems.append(f"Page {name} is not an xs:int: {value!r}")
            elif kind == "long" and not _is_int(value, 64):
                problems.append(f"Page {name} is not an xs:long: {value!r}")
            elif kind == "boolean" and value not in {"true", "false", "1", "0"}:
                problems.append(f"Page {name} is not an xs:boolean: {value!r}")
            elif kind == "PageType" and not set(value.split()) <= PAGE_TYPES:
                problems.append(f"Page Type is not a ComicPageType list: {value!r}")
    return problems


def check_cbz(path_or_bytes) -> ElementTree.Element:
    """Open a CBZ, check its ComicInfo.xml and that it describes the images; returns the root."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with zipfile.ZipFile(source) as archive:
        names = archive.namelist()
        xml = archive.read(COMICINFO_FILE)
        images = [n for n in names if n != COMICINFO_FILE]
        sizes = []
        for name in images:
            with Image.open(io.BytesIO(archive.read(name))) as image:
                sizes.append((image.width, image.height, archive.getinfo(name).file_size))
    assert check_comicinfo(xml) == []
    assert images == sorted(images), "readers show pages in file-name order"
    root = ElementTree.fromstring(xml)
    assert int(root.findtext("PageCount")) == len(images)
    pages = root.find("Pages")
    assert [int(p.get("Image")) for p in pages] == list(range(len(images)))
    assert [(int(p.get("ImageWidth")), int(p.get("ImageHeight")), int(p.get("ImageSize")))
            for p in pages] == sizes
    return root


# ------------------------------------------------------------------ the checker can fail

@pytest.mark.parametrize("xml, problem", [
    (b"<ComicInfo><Summary>s</Summary><Title>t</Title></ComicInfo>", "Title is out of"),
    (b"<ComicInfo><PageCount>2</PageCount><Characters>Ada</Characters></ComicInfo>", ""),
    (b"<ComicInfo><Characters>Ada</Characters><PageCount>2</PageCount></ComicInfo>", "PageCount is out of"),
    (b"<ComicInfo><PageCount>two</PageCount></ComicInfo>", "not an xs:int"),
    (b"<ComicInfo><Manga>Maybe</Manga></ComicInfo>", "not a Manga"),
    (b"<ComicInfo><Author>Ada</Author></ComicInfo>", "unknown element Author"),
    (b"<ComicInfo><Pages><Page Type='Story'/></Pages></ComicInfo>", "no Image attribute"),
    (b"<ComicInfo><Pages><Page Image='0' ImageWidth='wide'/></Pages></ComicInfo>", "ImageWidth is not"),
    (b"<ComicInfo><Title>a</Title><Title>b</Title></ComicInfo>", "repeated"),
])
def test_checker_finds_each_kind_of_problem(xml, problem):
    found = check_comicinfo(xml)
    if problem:
        assert any(problem in p for p in found), found
    else:
        assert found == []


# ------------------------------------------------------------------ what we write

def _pages(n: int) -> list[Image.Image]:
    return [Image.new("RGB", (40 + i, 60), (i * 20, 0, 0)) for i in range(n)]


def test_cbz_has_pages_in_reading_order_and_a_valid_comicinfo():
    pages = _pages(12)
    info = ComicInfo(title="Ada & the <Engine>", summary="Ada meets Alan.\nThey talk.",
                     characters=("Ada Lovelace", "Alan  Turing"), writer="Ada")
    data = cbz_bytes([png_bytes(p) for p in pages], info)
    root = check_cbz(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist()[0] == COMICINFO_FILE
        assert archive.namelist()[1:] == [f"{i:03d}.png" for i in range(1, 13)]
        for i, page in enumerate(pages):
            with Image.open(io.BytesIO(archive.read(page_name(i, 12)))) as image:
                assert image.convert("RGB").tobytes() == page.tobytes()
    assert root.findtext("Title") == "Ada & the <Engine>"
    assert root.findtext("Summary") == "Ada meets Alan.\nThey talk."
    assert root.findtext("Characters") == "Ada Lovelace, Alan Turing"
    assert root.findtext("Writer") == "Ada" and root.findtext("PageCount") == "12"
    assert [p.get("Type") for p in root.find("Pages")][:2] == ["FrontCover", "Story"]
    assert [c.tag for c in root] == ["Title", "Summary", "Notes", "Writer", "PageCount", "Manga",
                                     "Characters", "Pages"]


def test_page_names_stay_in_order_past_999_pages():
    names = [page_name(i, 1200) for i in range(1200)]
    assert names == sorted(names) and names[0] == "0001.png"


def test_empty_values_are_left_out_and_no_pages_is_refused():
    root = check_cbz(cbz_bytes([png_bytes(_pages(1)[0])], ComicInfo()))
    assert [c.tag for c in root] == ["Notes", "PageCount", "Manga", "Pages"]
    with pytest.raises(ValueError):
        cbz_bytes([], ComicInfo())


def test_export_writes_comic_cbz_beside_the_pdf(tmp_path):
    request = ComicRequest(panels=(PanelSpec("Ada Lovelace waves.", ("Ada Lovelace",)),
                                   PanelSpec("Alan Turing smiles.", ("Alan Turing",))))
    project = Project(request=request, title="Hello", story="Ada and Alan meet.",
                      cast_order=("Alan Turing",))
    panels = _pages(2)
    written = export_comic(tmp_path, project, panels, _pages(3), writer="Grace")
    assert written.cbz == tmp_path / CBZ_FILE and written.pdf.parent == written.cbz.parent
    root = check_cbz(written.cbz)
    assert root.findtext("Summary") == "Ada and Alan meet." and root.findtext("Writer") == "Grace"
    assert root.findtext("Characters") == "Alan Turing, Ada Lovelace"
    untold = export_comic(tmp_path / "b", Project(request=request), panels, _pages(1))
    assert check_cbz(Path(untold.cbz)).findtext("Summary") == "Ada Lovelace waves. Alan Turing smiles."
