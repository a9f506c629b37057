"""Reading text files given by users, one text per line (`embed --texts`, `text train-tokenizer --corpus`,
`text pretrain-backbone --corpus`): one reader, errors that name the file and the line.

A text file here is UTF-8 (a byte-order mark is skipped), one text per non-empty line, surrounding blanks
stripped. Refused, naming the file: a missing file (`FileNotFoundError`), a folder or unreadable file, bytes that
are not UTF-8 (another encoding: UTF-16, Latin-1...), NUL characters (a binary file), a line longer than
`MAX_LINE_CHARS` (not a text: a caption or an instruction is a few hundred characters; tokenising megabytes
would take minutes for nothing, the models read at most a few hundred tokens), and a file without any text.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MAX_LINE_CHARS", "TextFileError", "read_text_lines"]

MAX_LINE_CHARS = 20_000
"""Longest line accepted: 40 times the longest caption of the toolkit's corpora, far past any model's
512-token window."""


class TextFileError(ValueError):
    """A text file that cannot be read as UTF-8 texts, one per line; the message names the file (and line)."""


def read_text_lines(path: str | os.PathLike, what: str = "text file") -> tuple[list[str], list[int]]:
    """(texts, 1-based line numbers) of the non-empty lines of `path` (module doc for what is refused)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file ({what})") from None
    except IsADirectoryError:
        raise TextFileError(f"{path}: a folder, expected a {what} (one text per line)") from None
    except OSError as err:
        raise TextFileError(f"{path}: cannot read this {what} ({err.strerror or err})") from None
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise TextFileError(
            f"{path}: not UTF-8 text (byte {data[err.start : err.start + 1]!r} on line {line}); save the {what} as "
            "UTF-8, one text per line"
        ) from None
    if "\0" in content:
        line = content[: content.index("\0")].count("\n") + 1
        raise TextFileError(f"{path}: holds a NUL character on line {line}: a binary file, not a {what}")
    texts, numbers = [], []
    for number, line in enumerate(content.splitlines(), start=1):
        text = line.strip()
        if len(text) > MAX_LINE_CHARS:
            raise TextFileError(
                f"{path}: line {number} holds {len(text)} characters, more than {MAX_LINE_CHARS}: not one text "
                "per line (a caption or instruction is a few hundred characters)"
            )
        if text:
            texts.append(text)
            numbers.append(number)
    if not texts:
        raise TextFileError(f"{path}: no text (the {what} is empty or holds only blank lines)")
    return texts, numbers
