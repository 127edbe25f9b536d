"""Reading files the program did not write (uploads, project zips, panel lists) with bounded work.

Every read here has a cap from ``configs/limits.yaml`` that holds whatever the file claims:

* :func:`read_capped` reads at most ``cap + 1`` bytes of a file, so a 5 GB file costs ``cap``;
* :func:`open_zip` counts a zip's entries from its end record before :mod:`zipfile` parses the
  central directory, and :func:`read_member` checks an entry's declared size, then streams it in
  64 KiB chunks and stops as soon as the actual size passes the cap or the zip's total budget
  (a zip bomb's ``project.json`` stops after ``json_bytes``, not after 5 GB);
* :func:`loads_json` checks size and nesting depth before parsing (no RecursionError), refuses
  NaN / Infinity, numbers longer than ``json_number_chars`` and numbers that overflow to infinity.

Every refusal is a :class:`ReadRefused` (a ``ValueError``) with one line naming the file and the
limit; callers add nothing to or take nothing from the program's state before a read succeeds.
"""

from __future__ import annotations

import json
import math
import re
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
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


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
    """Entries a zip declares in its end-of-central-directory record (zip64 aware), or None."""
    try:
        record = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # stable since 2.x
    except (OSError, ValueError, EOFError):
        return None
    if not record:
        return None
    return int(record[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def open_zip(path: str | Path, limits: Limits) -> zipfile.ZipFile:
    """``zipfile.ZipFile(path)`` once its entry count is within ``limits.zip_members``.

    Raises:
        ReadRefused: too many entries, or not a readable zip.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        count = zip_entry_count(handle)
    if count is None:
        raise ReadRefused(f"{path.name}: not a readable zip file")
    if count > limits.zip_members:
        raise ReadRefused(limits.refusal(f"{path.name}: {count:,} zip entries", "zip_members"))
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


def json_depth(text: str) -> int:
    """Deepest nesting of arrays/objects in JSON ``text`` (brackets inside strings ignored).

    Linear time, no recursion: strings are removed, then the bracket sequence is summed.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


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
    depth = json_depth(text)
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
           "open_zip", "read_capped", "read_member", "zip_entry_count"]
