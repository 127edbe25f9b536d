"""Reading files the program did not write (uploads, project zips, panel lists) with bounded work.

Every read here has a cap from ``configs/limits.yaml`` that holds whatever the file claims:

* :func:`read_capped` reads at most ``cap + 1`` bytes of a file, so a 5 GB file costs ``cap``;
* :func:`open_zip` walks a zip's central directory itself before :mod:`zipfile` parses it: the
  directory's size is checked against ``zip_directory_bytes`` and its entries are counted one by
  one up to ``zip_members`` (the end record's own count is never trusted), and :func:`read_member` checks an entry's declared size, then streams it in
  64 KiB chunks and stops as soon as the actual size passes the cap or the zip's total budget
  (a zip bomb's ``project.json`` stops after ``json_bytes``, not after 5 GB);
* :func:`loads_json` checks size and nesting depth before parsing (no RecursionError; the depth
  scan is one linear pass, whatever the strings hold), refuses
  NaN / Infinity, numbers longer than ``json_number_chars`` and numbers that overflow to infinity.

Every refusal is a :class:`ReadRefused` (a ``ValueError``) with one line naming the file and the
limit; callers add nothing to or take nothing from the program's state before a read succeeds.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from configs import Limits

CHUNK = 64 * 1024
#: What :mod:`zipfile` raises for damaged, encrypted or exotic archives and entries.
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
              EOFError, zlib.error, ValueError, OSError)
#: A central directory entry: signature, fixed part (46 bytes) with name/extra/comment lengths.
_CD_SIGNATURE = b"PK\x01\x02"
_CD_FIXED = 46
_CD_LENGTHS = struct.Struct("<HHH")  # at offset 28: file name, extra field, comment lengths


class ReadRefused(ValueError):
    """A file that is too big, too deep or malformed; the message is one line naming the limit."""


def read_capped(path: str | Path, cap: int, what: str, key: str, limits: Limits) -> bytes:
    """The bytes of ``path``, refusing files over ``cap`` bytes (``limits.<key>``) unread.

    The size on disk is checked first; the read itself stops at ``cap + 1`` bytes in case the
    file grows (a pipe, /dev/zero).

    Raises:
        ReadRefused: too big. OSError (FileNotFoundError, ...) passes through for the caller.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > cap:
        raise ReadRefused(limits.refusal(f"{what} ({size:,} bytes)", key, cap))
    with open(path, "rb") as handle:
        return _read_stream(handle, cap, what, key, limits)


def _read_stream(handle: BinaryIO, cap: int, what: str, key: str, limits: Limits) -> bytes:
    chunks, total = [], 0
    while True:
        chunk = handle.read(min(CHUNK, cap + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            raise ReadRefused(limits.refusal(f"{what} (more than {cap:,} bytes)", key, cap))
        chunks.append(chunk)


# ----------------------------------------------------------------------------- zip


def zip_entry_count(handle: BinaryIO) -> int | None:
    """Entries a zip declares in its end-of-central-directory record (zip64 aware), or None.

    Only a claim: :func:`open_zip` counts the entries by walking the directory instead."""
    record = _end_record(handle)
    return None if record is None else int(record[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def _end_record(handle: BinaryIO) -> list | None:
    try:
        record = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # stable since 2.x
    except (OSError, ValueError, EOFError, struct.error):
        return None
    return record or None


def zip_directory(handle: BinaryIO, source: str, limits: Limits) -> int:
    """Count a zip's entries by walking its central directory, with bounded work.

    The directory's size (from the end record, as :mod:`zipfile` will use it) must be at most
    ``limits.zip_directory_bytes``; it is read once and its entries are walked header by header
    (46 bytes plus the name, extra and comment lengths each declares), stopping at the first
    entry past ``limits.zip_members``. A forged end record that claims 5 entries over 1.5 million
    real ones is thus refused after reading 2 MiB, not after building 1.5 million ZipInfos.

    Returns:
        The number of entries in the directory.
    Raises:
        ReadRefused: not a zip, a directory over ``zip_directory_bytes`` or ``zip_members``.
    """
    record = _end_record(handle)
    if record is None:
        raise ReadRefused(f"{source}: not a readable zip file")
    size = int(record[zipfile._ECD_SIZE])  # type: ignore[attr-defined]
    if size > limits.zip_directory_bytes:
        raise ReadRefused(limits.refusal(f"{source}: a {size:,}-byte zip directory",
                                         "zip_directory_bytes"))
    # Where zipfile looks for the directory: the end record's position minus its size (data
    # prepended to the archive, as in self-extracting zips, shifts every offset alike).
    start = int(record[zipfile._ECD_LOCATION]) - size  # type: ignore[attr-defined]
    if record[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
    if start < 0:
        raise ReadRefused(f"{source}: not a readable zip file (bad directory offset)")
    handle.seek(start)
    directory = handle.read(size)
    count, at = 0, 0
    while at + _CD_FIXED <= len(directory):
        if directory[at:at + 4] != _CD_SIGNATURE:
            break  # zipfile raises BadZipFile here; it is not our count to refuse
        count += 1
        if count > limits.zip_members:
            raise ReadRefused(limits.refusal(f"{source}: more than {limits.zip_members:,} zip "
                                             "entries", "zip_members"))
        name, extra, comment = _CD_LENGTHS.unpack_from(directory, at + 28)
        at += _CD_FIXED + name + extra + comment
    return count


def open_zip(path: str | Path, limits: Limits) -> zipfile.ZipFile:
    """``zipfile.ZipFile(path)`` once :func:`zip_directory` has bounded its directory.

    Raises:
        ReadRefused: too many entries, too big a directory, or not a readable zip.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        zip_directory(handle, path.name, limits)
    try:
        return zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise ReadRefused(f"{path.name}: not a readable zip file ({type(exc).__name__})") from None


@dataclass
class ZipBudget:
    """Uncompressed bytes still allowed from one zip (starts at ``limits.zip_read_bytes``)."""

    left: int


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, key: str,
                budget: ZipBudget, limits: Limits, source: str) -> bytes:
    """One zip entry's bytes, at most ``cap`` (``limits.<key>``) and within ``budget``.

    The declared size is checked before reading and the actual size while streaming, so a
    lying header or a bomb costs at most ``cap`` bytes of memory and time.

    Raises:
        ReadRefused: over a cap, encrypted, damaged or an unsupported compression.
    """
    where = f"{source}:{info.filename}"
    allowed = min(cap, budget.left)
    why = key if cap <= budget.left else "zip_read_bytes"
    limit = cap if cap <= budget.left else limits.zip_read_bytes
    if info.file_size > allowed:
        raise ReadRefused(limits.refusal(f"{where} ({info.file_size:,} bytes unpacked)", why, limit))
    try:
        with archive.open(info) as handle:
            chunks, total = [], 0
            while True:
                chunk = handle.read(min(CHUNK, allowed + 1 - total))
                if not chunk:
                    break
                total += len(chunk)
                if total > allowed:
                    raise ReadRefused(limits.refusal(f"{where} (more than {allowed:,} bytes unpacked)",
                                                     why, limit))
                chunks.append(chunk)
    except ReadRefused:
        raise
    except ZIP_ERRORS as exc:
        raise ReadRefused(f"{where}: cannot unpack ({type(exc).__name__})") from None
    budget.left -= total
    return b"".join(chunks)


# ----------------------------------------------------------------------------- JSON


_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')  # every byte but these five
_DEPTH_CHUNK = 1 << 18


def json_depth(text: str | bytes) -> int:
    """Deepest nesting of arrays/objects in JSON ``text`` (brackets inside strings ignored).

    Linear time and no backtracking whatever the strings hold (a run of escaped quotes costs one
    pass, not one pass per quote), no recursion, memory bounded by a 256 KiB chunk:

    1. on the UTF-8 bytes (JSON's structural characters are ASCII and no multi-byte UTF-8
       sequence contains an ASCII byte), escape pairs are blanked left to right: ``\\\\``
       first, then ``\\"``, so every quote left is a string delimiter;
    2. all bytes but ``" [ ] { }`` are dropped (``bytes.translate``);
    3. in chunks, a bracket counts when an even number of quotes precedes it, and the running
       sum of +1 (opening) / -1 (closing) gives the depth.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    marks = data.replace(b"\\\\", b"__").replace(b'\\"', b"__").translate(None, _STRUCTURE)
    deepest, depth, quotes = 0, 0, 0
    for start in range(0, len(marks), _DEPTH_CHUNK):
        codes = np.frombuffer(marks, dtype=np.uint8, count=min(_DEPTH_CHUNK, len(marks) - start),
                              offset=start)
        quote = codes == ord('"')
        before = (quotes + np.cumsum(quote, dtype=np.int64)) - quote  # quotes strictly before
        outside = before % 2 == 0
        steps = np.where(outside & ((codes == ord("[")) | (codes == ord("{"))), 1,
                         np.where(outside & ((codes == ord("]")) | (codes == ord("}"))), -1, 0))
        running = depth + np.cumsum(steps, dtype=np.int64)
        deepest = max(deepest, int(running.max()))
        depth, quotes = int(running[-1]), quotes + int(quote.sum())
    return deepest


def loads_json(data: bytes | str, source: str, limits: Limits) -> Any:
    """Parse untrusted JSON: at most ``json_bytes``, nesting at most ``json_depth``, finite numbers
    of at most ``json_number_chars`` characters, no NaN / Infinity.

    Raises:
        ReadRefused: one line naming ``source`` and the limit or the line of the syntax error.
    """
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > limits.json_bytes:
        raise ReadRefused(limits.refusal(f"{source} ({size:,} bytes)", "json_bytes"))
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ReadRefused(f"{source}: not UTF-8 text") from None
    else:
        text = data
    depth = json_depth(data if isinstance(data, (bytes, bytearray)) else text)
    if depth > limits.json_depth:
        raise ReadRefused(limits.refusal(f"{source}: JSON nesting {depth}", "json_depth"))

    def number(kind: type) -> Any:
        def parse(token: str) -> Any:
            if len(token) > limits.json_number_chars:
                raise ReadRefused(limits.refusal(f"{source}: a {len(token):,}-character number",
                                                 "json_number_chars"))
            value = kind(token)
            if kind is float and not math.isfinite(value):
                raise ReadRefused(f"{source}: the number {token} is too large (not a finite number)")
            return value
        return parse

    def constant(token: str) -> Any:
        raise ReadRefused(f"{source}: {token} is not allowed; use finite numbers only")

    try:
        return json.loads(text, parse_int=number(int), parse_float=number(float),
                          parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ReadRefused(f"{source} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ReadRefused(limits.refusal(f"{source}: JSON nesting", "json_depth")) from None


__all__ = ["CHUNK", "ReadRefused", "ZIP_ERRORS", "ZipBudget", "json_depth", "loads_json",
           "open_zip", "read_capped", "read_member", "zip_directory", "zip_entry_count"]
