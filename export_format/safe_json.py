"""JSON from files, parsed with a size and a nesting-depth bound (one helper for every reader).

`json.loads` recurses once per nesting level, so a file nested a few thousand
levels deep raises `RecursionError` out of any reader, and a huge file is read
whole into memory. Every JSON document this project reads from a file (configs,
manifests, PNG settings, app settings, history) is small and shallow, so these
bounds cost nothing and turn both into one-line errors.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

MAX_DEPTH = 64  # our documents nest at most ~8 levels (manifest endpoints tables)
MAX_BYTES = 16 * 1024 * 1024  # default bound; callers pass tighter ones
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)  # a JSON string literal, escapes included


class JsonLimitError(ValueError):
    """A JSON document is too large, too deeply nested, or not valid JSON; the message names it."""


def nesting_depth(data: bytes) -> int:
    """The largest bracket nesting depth of JSON text (string contents ignored); linear time, no recursion."""
    structure = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    steps = (np.isin(structure, (ord("["), ord("{"))).astype(np.int64)
             - np.isin(structure, (ord("]"), ord("}"))).astype(np.int64))  # fmt: skip
    return int(steps.cumsum().max(initial=0))


def loads(
    text: str | bytes, *, source: str, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Parse JSON text within the bounds.

    Args:
        text: the document.
        source: where it came from (a path), named in errors.
        max_bytes: refuse longer documents.
        max_depth: refuse deeper nesting of arrays/objects.

    Returns:
        The parsed value (plain data only: json never executes anything).

    Raises:
        JsonLimitError: too large, too deep, or not valid JSON.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(data) > max_bytes:
        raise JsonLimitError(f"{source} is {len(data):,} bytes, more than the {max_bytes:,} this file can be")
    depth = nesting_depth(data)
    if depth > max_depth:
        raise JsonLimitError(f"{source} nests {depth} levels deep (at most {max_depth}); it is not a file this program wrote")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise JsonLimitError(f"{source} is not valid JSON ({reason})") from None


def load(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Read and parse a JSON file within the bounds (the size is checked before reading).

    Raises:
        FileNotFoundError: no such file (callers turn it into their own message).
        JsonLimitError: too large, too deep, not valid JSON, or unreadable.
    """
    source = os.fspath(path)
    try:
        size = os.path.getsize(source)
        if size > max_bytes:
            raise JsonLimitError(f"{source} is {size:,} bytes, more than the {max_bytes:,} this file can be")
        with open(source, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise JsonLimitError(f"{source} is a folder, not a JSON file") from None
    except OSError as error:
        raise JsonLimitError(f"cannot read {source} ({error.strerror or error})") from None
    return loads(data, source=source, max_bytes=max_bytes, max_depth=max_depth)
