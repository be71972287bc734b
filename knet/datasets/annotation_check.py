# Copyright (c) K-Net-mm contributors. Licensed under the Apache License 2.0.
"""Up-front check of annotation JSON files: truncated / malformed JSON and
COCO files without ``categories`` or ``images`` are reported by file name,
not as a ``JSONDecodeError`` or ``KeyError`` deep inside pycocotools.

Files up to :data:`FULL_PARSE_LIMIT` bytes (the synthetic data, COCO val
annotations) are parsed completely; larger ones (``*_train2017.json``,
~450 MB) only get a cheap truncation check (first and last non-blank
characters), so the check does not double the start-up time.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache

FULL_PARSE_LIMIT = 64 * 2**20
_TAIL_BYTES = 256


def _tail_char(path: str, size: int) -> bytes:
    """Last non-blank byte of a file (b'' if it is blank)."""
    with open(path, 'rb') as f:
        f.seek(max(0, size - _TAIL_BYTES))
        return f.read().rstrip()[-1:]


def _head_char(path: str) -> bytes:
    """First non-blank byte of a file (b'' if the head is blank)."""
    with open(path, 'rb') as f:
        return f.read(_TAIL_BYTES).lstrip()[:1]


@lru_cache(maxsize=64)
def _problem(path: str, coco: bool, size: int, mtime_ns: int) -> str | None:
    """Problem of one file version (cached: val and test share files)."""
    if size == 0:
        return 'empty file (truncated download or extraction?)'
    if size > FULL_PARSE_LIMIT:
        head, tail = _head_char(path), _tail_char(path, size)
        if head != b'{' or tail != b'}':
            return ('not a complete JSON object (starts with '
                    f'{head.decode(errors="replace")!r}, ends with '
                    f'{tail.decode(errors="replace")!r}): truncated or '
                    'malformed')
        return None
    try:
        with open(path, 'rb') as f:
            data = json.loads(f.read())
    except json.JSONDecodeError as err:
        return (f'not valid JSON: {err.msg} (line {err.lineno}, column '
                f'{err.colno}, byte {err.pos} of {size}): truncated or '
                'malformed')
    except UnicodeDecodeError as err:
        return f'not UTF-8 text ({err.reason} at byte {err.start})'
    if not coco:
        return None
    if not isinstance(data, dict):
        return f'a COCO file holds a JSON object, not a {type(data).__name__}'
    for key in ('categories', 'images'):
        value = data.get(key)
        if not isinstance(value, list):
            return f"no '{key}' list (not a COCO-format annotation file?)"
        if not value:
            return f"'{key}' is empty"
    return None


def annotation_problem(path: str, coco: bool = False) -> str | None:
    """Why the JSON file ``path`` cannot be used, or None if it looks fine.

    ``coco=True`` also requires non-empty ``categories`` and ``images``
    lists (fully parsed files only).
    """
    stat = os.stat(path)
    return _problem(os.path.abspath(path), coco, stat.st_size,
                    stat.st_mtime_ns)
