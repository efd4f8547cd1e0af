"""The knowledge base file: what the bot knows, loaded from YAML and validated all at once.

Owns: the format of knowledge_base.yaml, the frozen `KnowledgeBase` / `Entry` values, and turning
any problem with the file into one `KnowledgeBaseError` line that names the entry and the field.
Loading is all or nothing, so a reload (on SIGHUP) with a bad file keeps the old knowledge base.

The format::

    greetings: [hi, hello, good morning]   # optional: extra greeting phrases
    entries:                                # required, at least one
      - question: How long does shipping take?
        alternatives: [When will my order arrive?, delivery time]   # optional
        answer: Orders ship within 1 business day ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from actors.bot import normalise

__all__ = [
    "Entry",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "load_knowledge_base",
    "parse_knowledge_base",
]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
_TOP_KEYS = frozenset({"entries", "greetings"})
_ENTRY_KEYS = frozenset({"question", "alternatives", "answer"})


class KnowledgeBaseError(Exception):
    """A knowledge base that cannot be used; `str()` is one line naming the place and the problem.

    `index` is the 0-based entry index (None for a problem outside the entries) and `field` the
    key at fault (e.g. "answer", "alternatives[2]"), so callers can report them separately.
    """

    def __init__(self, message: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field


@dataclass(frozen=True, slots=True)
class Entry:
    """One question the bot can answer, with other ways customers ask it."""

    question: str
    alternatives: tuple[str, ...]
    answer: str

    @property
    def phrasings(self) -> tuple[str, ...]:
        return (self.question, *self.alternatives)


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    entries: tuple[Entry, ...]
    greetings: tuple[str, ...] = ()


def load_knowledge_base(path: str | os.PathLike[str]) -> KnowledgeBase:
    """Read and validate a knowledge base file; any problem raises `KnowledgeBaseError`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise KnowledgeBaseError(f"{file}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise KnowledgeBaseError(f"{file}: not UTF-8 text") from None
    return parse_knowledge_base(text, source=str(file))


def parse_knowledge_base(text: str, *, source: str = "knowledge base") -> KnowledgeBase:
    """Validate the YAML text of a knowledge base; `source` prefixes every error message."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise KnowledgeBaseError(f"{source}: invalid YAML{where}: {problem}") from None
    finally:
        loader.dispose()
    return _Checker(source, _entry_lines(node)).knowledge_base(data)


def _entry_lines(node: yaml.Node | None) -> list[int]:
    """The 1-based line of each entry, to point at it in error messages."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        is_entries = isinstance(key, yaml.ScalarNode) and key.value == "entries"
        if is_entries and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


class _Checker:
    def __init__(self, source: str, lines: list[int]) -> None:
        self._source = source
        self._lines = lines

    def _fail(
        self, where: str, problem: str, index: int | None = None, field: str | None = None
    ) -> KnowledgeBaseError:
        line = (
            f" (line {self._lines[index]})"
            if index is not None and index < len(self._lines)
            else ""
        )
        return KnowledgeBaseError(
            f"{self._source}: {where}{line}: {problem}", index=index, field=field
        )

    def knowledge_base(self, data: Any) -> KnowledgeBase:
        if data is None:
            raise self._fail("entries", "the file is empty; at least one entry is required")
        if not isinstance(data, dict):
            raise self._fail("top level", "must be a mapping with an 'entries' list")
        for key in data:
            if key not in _TOP_KEYS:
                raise self._fail(str(key), "unknown key (expected 'entries' or 'greetings')")
        raw_entries = data.get("entries")
        if raw_entries is None:
            raise self._fail("entries", "required key is missing")
        if not isinstance(raw_entries, list) or not raw_entries:
            raise self._fail("entries", "must be a non-empty list of entries")
        entries = tuple(self._entry(i, raw) for i, raw in enumerate(raw_entries))
        self._no_duplicates(entries)
        return KnowledgeBase(entries=entries, greetings=self._greetings(data.get("greetings")))

    def _greetings(self, raw: Any) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self._fail("greetings", "must be a list of phrases")
        for j, phrase in enumerate(raw):
            if not isinstance(phrase, str) or not normalise(phrase):
                raise self._fail(f"greetings[{j}]", "must be a phrase with at least one word")
        return tuple(raw)

    def _entry(self, i: int, raw: Any) -> Entry:
        where = f"entries[{i}]"
        if not isinstance(raw, dict):
            raise self._fail(where, "must be a mapping with question, alternatives and answer", i)
        for key in raw:
            if key not in _ENTRY_KEYS:
                raise self._fail(
                    f"{where}.{key}",
                    "unknown key (expected question, alternatives, answer)",
                    i,
                    str(key),
                )
        question = self._text(i, "question", raw.get("question"))
        answer = self._text(i, "answer", raw.get("answer"))
        alternatives = raw.get("alternatives")
        if alternatives is None:
            alternatives = []
        if not isinstance(alternatives, list):
            raise self._fail(
                f"{where}.alternatives", "must be a list of phrasings", i, "alternatives"
            )
        alts = tuple(self._text(i, f"alternatives[{j}]", alt) for j, alt in enumerate(alternatives))
        for field, phrasing in (
            ("question", question),
            *((f"alternatives[{j}]", a) for j, a in enumerate(alts)),
        ):
            if not normalise(phrasing):
                raise self._fail(f"{where}.{field}", "must contain at least one word", i, field)
        return Entry(question=question, alternatives=alts, answer=answer)

    def _text(self, i: int, field: str, value: Any) -> str:
        where = f"entries[{i}].{field}"
        if value is None:
            raise self._fail(
                where,
                "required key is missing" if "[" not in field else "must not be empty",
                i,
                field,
            )
        if not isinstance(value, str):
            raise self._fail(where, f"must be text, not {type(value).__name__}", i, field)
        if not value.strip():
            raise self._fail(where, "must not be empty", i, field)
        return value.strip()

    def _no_duplicates(self, entries: tuple[Entry, ...]) -> None:
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            fields = ("question", *(f"alternatives[{j}]" for j in range(len(entry.alternatives))))
            for field, phrasing in zip(fields, entry.phrasings, strict=True):
                key = normalise(phrasing)
                first = seen.setdefault(key, i)
                if first != i:
                    raise self._fail(
                        f"entries[{i}].{field}",
                        f"{phrasing!r} is already a phrasing of entries[{first}]",
                        i,
                        field,
                    )
