"""Hostile files made on the spot, small on disk: zip bombs and generated bad projects.

:func:`zip_bomb` writes a real deflate zip bomb in well under a second: one 1 MiB block of zeros
is deflated once with a full flush (which resets the compressor, so the same bytes encode every
further block) and that output is repeated; sizes go in a zip64 extra field. 5 GiB of zeros
take about 5 MB. The CRC is left 0: a reader that respects its caps stops long before the end,
where the CRC would be checked.

:func:`hostile_documents` yields seeded, generated project.json / panels.json variants for the
fuzz test: valid ones mutated field by field with wrong types, huge and non-finite numbers,
deep nesting, long and control-character strings, missing keys.
"""

from __future__ import annotations

import json
import random
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

BLOCK = 1 << 20


def zip_bomb(path: Path, member: str = "project.json", size: int = 5 << 30,
             declared: int | None = None) -> Path:
    """A zip whose ``member`` inflates to ``size`` zero bytes (a multiple of 1 MiB).

    Args:
        declared: the uncompressed size written in the headers (default: the true ``size``);
            a smaller value makes a zip that lies about its size.
    """
    assert size % BLOCK == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(bytes(BLOCK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == block  # after a full flush the same input encodes the same way
    tail = compressor.flush()
    blocks = size // BLOCK
    compressed = len(block) * blocks + len(tail)
    declared = size if declared is None else declared
    name = member.encode("utf-8")
    extra = struct.pack("<HHQQ", 0x0001, 16, declared, compressed)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0x800, 8, 0, 0x21, 0,
                        0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)) + name + extra
    with open(path, "wb") as out:
        out.write(local)
        for _ in range(blocks):
            out.write(block)
        out.write(tail)
        directory_at = out.tell()
        central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0x800, 8, 0, 0x21, 0,
                              0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0)
        central += name + extra
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), directory_at, 0))
    return path


def forged_count_zip(path: Path, entries: int, claimed: int = 5) -> Path:
    """A zip with ``entries`` empty members whose end record claims only ``claimed`` entries."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"p/{i:07d}", b"")
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, claimed, claimed)
    path.write_bytes(bytes(data))
    return path


def huge_png(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A valid grayscale PNG of ``width`` x ``height`` zero pixels, made without allocating them
    (rows are deflated one by one): a 1-bit 9000 x 9000 picture is about 10 KB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width * bit_depth + 7) // 8)   # filter byte 0 + packed zero samples
    compressor, parts = zlib.compressobj(9), []
    for _ in range(height):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
            + chunk(b"IEND", b""))


def saved_comic_zip(path: Path, pictures: dict[str, bytes] | None = None,
                    bomb: tuple[str, int] | None = None) -> Path:
    """A saved comic.zip: a valid project.json plus ``pictures`` (zip path -> bytes) and, with
    ``bomb=(member, size)``, a :func:`zip_bomb` member inflating to ``size`` zero bytes."""
    if bomb is not None:
        zip_bomb(path, member=bomb[0], size=bomb[1])
    with zipfile.ZipFile(path, "a" if bomb is not None else "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.json", json.dumps(valid_project(1)))
        for name, data in (pictures or {}).items():
            archive.writestr(name, data)
    return path


# ----------------------------------------------------------------------------- fuzzing


def valid_project(panels: int = 2) -> dict[str, Any]:
    """A small valid project.json document (tiny preset sizes)."""
    return {
        "format": "comic-identity-project", "format_version": 1, "app_version": "0.1.0",
        "title": "A day", "preset": "tiny", "model": "tiny-sdxl", "sampler": "dpm_multistep",
        "cast": ["Ada Lovelace"], "style": "none", "keywords": [], "negative_prompt": "blurry",
        "seed": 7, "steps": 4, "guidance_scale": 8.5, "width": 64, "height": 64, "candidates": 1,
        "panels": [{"text": f"Ada Lovelace waves {i}.", "characters": ["Ada Lovelace"],
                    "seed": 7 + i, "candidate": 0} for i in range(panels)],
    }


def _hostile_value(rng: random.Random) -> Any:
    choices = [
        lambda: None, lambda: True, lambda: -1, lambda: 0, lambda: 10**12, lambda: 2**40,
        lambda: 2**64, lambda: 1.5, lambda: -0.0, lambda: "1", lambda: "", lambda: [],
        lambda: {}, lambda: "x" * rng.choice([10, 300, 5000]),
        lambda: "A\u202eB\nC\x00", lambda: "<script>alert(1)</script>",
        lambda: ["Ａｄａ Lovelace", "李小龙"], lambda: [{"text": "x"}] * rng.choice([0, 1, 150]),
        lambda: rng.uniform(-1e6, 1e6), lambda: "王菲",
    ]
    return rng.choice(choices)()


def _raw_tokens(rng: random.Random) -> str:
    """JSON texts that ``json.dumps`` cannot make: non-finite, long numbers, deep nesting."""
    return rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5000,
                       "1" + "0" * 39, "[" * 5000 + "]" * 5000, "[" * 40 + "1" + "]" * 40,
                       '"\\ud800"', "0.1e-400"])


def hostile_documents(seed: int, count: int) -> Iterator[tuple[str, str]]:
    """``count`` (kind, JSON text) pairs, kind "project" or "panels", from ``seed``."""
    rng = random.Random(seed)
    keys = list(valid_project())
    panel_keys = ["text", "characters", "seed", "candidate"]
    for index in range(count):
        kind = "project" if index % 3 else "panels"
        doc = valid_project(rng.choice([1, 2, 3]))
        target: Any = doc if kind == "project" else doc["panels"]
        for _ in range(rng.choice([0, 1, 1, 2, 3])):  # 0: a valid document (or a raw splice)
            action = rng.random()
            if kind == "project" and action < 0.45:
                target[rng.choice(keys)] = _hostile_value(rng)
            elif kind == "project" and action < 0.55:
                target.pop(rng.choice(keys), None)
            else:
                panels = doc.get("panels")
                if isinstance(panels, list) and panels and isinstance(panels[0], dict):
                    panel = rng.choice(panels)
                    panel[rng.choice(panel_keys)] = _hostile_value(rng)
        text = json.dumps(target, ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.3:  # splice a raw token JSON cannot express into a number slot
            token = _raw_tokens(rng)
            for slot in ('"steps": 4', '"seed": 7', '"guidance_scale": 8.5', '"width": 64'):
                if slot in text:
                    text = text.replace(slot, slot.split(":")[0] + ": " + token, 1)
                    break
            else:
                text = f'{{"panels": {token}}}' if kind == "panels" else text
        if rng.random() < 0.05:
            text = text[: rng.randrange(1, max(2, len(text)))]  # truncated
        yield kind, text
