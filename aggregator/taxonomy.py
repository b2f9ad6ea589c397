"""The topic taxonomy (``models/taxonomy.yaml``): topic definitions, feed-category aliases
and the hash that ties a trained model to the taxonomy it was trained on.

Light on purpose: stdlib and PyYAML only, because query commands import it. It must not
import scikit-learn, numpy or anything from the classifier.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aggregator.config import YAML_LOADER
from aggregator.errors import ConfigError

__all__ = ["Taxonomy", "TopicDef", "normalize_category"]

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
#: A name is typed on command lines, listed in tables and stored in a unique index
#: (PostgreSQL's btree refuses a key over ~2,700 bytes: every command then failed with
#: "index row size exceeds btree maximum").
MAX_NAME = 100
# Lines and controls a terminal acts on, and the bidirectional overrides that make a
# name read other than it is stored ("trojan source", CVE-2021-42574).
_BAD_NAME_CHARS = {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def normalize_category(value: str) -> str:
    """The key a feed category string is matched by: case, whitespace and punctuation
    removed, "&" read as "and" ("Policy & Regulation" == "policy-and-regulation").
    Letters beyond ASCII are kept (with their accents): they were dropped, so a topic
    named "Безопасность" had no key at all and its own name was no alias of it."""
    text = unicodedata.normalize("NFKC", value).casefold().replace("&", " and ")
    if text.isascii():  # nearly every category: one regular expression
        return _NON_ALNUM.sub("", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LMN")


#: How alike (difflib's ratio) an unknown topic name and a topic's spelling must be for
#: the error to suggest the topic: "Secrity" and "privcy" (0.9), not "Nope" (no topic).
NEAREST_CUTOFF = 0.8


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicDef:
    """One topic: ``aliases`` are feed category strings that mean it; ``seeds`` are
    phrases the classifier uses as evidence for it."""

    id: str
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()


#: Taxonomies parsed by :meth:`Taxonomy.load`, by (class, path, text): a taxonomy is
#: immutable, so one parse serves every load of the same text; the last few are kept.
_LOADED: OrderedDict[tuple[type[Taxonomy], str, str], Taxonomy] = OrderedDict()
_LOADED_LOCK = threading.Lock()
_LOADED_KEPT = 8


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """The ordered topics of one taxonomy file. Build with :meth:`load` or
    :meth:`from_mapping`; lookups by name or id are case-insensitive."""

    version: str
    topics: tuple[TopicDef, ...]
    _by_key: dict[str, TopicDef] = field(init=False, repr=False, compare=False)
    _by_spelling: dict[str, TopicDef] = field(init=False, repr=False, compare=False)
    _by_alias: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, TopicDef] = {}
        by_alias: dict[str, list[str]] = {}
        for topic in self.topics:
            for key in {topic.name.casefold(), topic.id.casefold()}:
                other = by_key.get(key)
                if other is not None and other is not topic:
                    raise ConfigError(
                        f"taxonomy: {topic.name!r} clashes with {other.name!r} on {key!r}"
                    )
                by_key[key] = topic
            for alias in (topic.name, topic.id, *topic.aliases):
                key = normalize_category(alias)
                if key and topic.name not in by_alias.setdefault(key, []):
                    by_alias[key].append(topic.name)
        object.__setattr__(self, "_by_key", by_key)
        # A name or id however it is spelled ("Policy and Regulation", "policy-and-
        # regulation"), where that spelling names one topic only.
        spellings: dict[str, list[TopicDef]] = {}
        for topic in self.topics:
            for key in {normalize_category(topic.name), normalize_category(topic.id)} - {""}:
                spellings.setdefault(key, []).append(topic)
        by_spelling = {k: ts[0] for k, ts in spellings.items() if len(ts) == 1}
        object.__setattr__(self, "_by_spelling", by_spelling)
        object.__setattr__(self, "_by_alias", {k: tuple(v) for k, v in by_alias.items()})

    # -- construction ---------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Taxonomy:
        """Read and validate a taxonomy YAML file; :class:`ConfigError` if it is
        missing, not YAML or malformed, in one line naming the file and the line."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read taxonomy {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            line = _text_line(e.object, e.start)
            raise ConfigError(f"taxonomy {path}, line {line}: not UTF-8 text") from e
        # The file is read every time (a change is never missed); parsing and validating
        # it is ~25 ms, paid once per text: every App and every re-read of an unchanged
        # file (the daemon's, `serve`'s, a test process's thousands) gets the same object.
        key = (cls, str(path), text)
        with _LOADED_LOCK:
            if (loaded := _LOADED.get(key)) is not None:
                _LOADED.move_to_end(key)
                return loaded
        taxonomy = cls._parse(path, text)
        with _LOADED_LOCK:
            _LOADED[key] = taxonomy
            while len(_LOADED) > _LOADED_KEPT:
                _LOADED.popitem(last=False)
        return taxonomy

    @classmethod
    def _parse(cls, path: Path, text: str) -> Taxonomy:
        loader = YAML_LOADER(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        except yaml.MarkedYAMLError as e:
            raise ConfigError(f"taxonomy {path}{_yaml_problem(e)}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"taxonomy {path} is not valid YAML: {e}") from e
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            # a value the safe loader cannot build (`version: 2024-02-30`, `!!int x`):
            # a traceback before
            raise ConfigError(
                f"taxonomy {path}: not valid YAML: a value cannot be read ({e})"
            ) from e
        finally:
            loader.dispose()
        _no_repeated_keys(node, f"taxonomy {path}")
        return cls.from_mapping(data, source=f"taxonomy {path}", lines=_topic_lines(node))

    @classmethod
    def from_mapping(
        cls, data: object, *, source: str = "taxonomy", lines: Sequence[int] = ()
    ) -> Taxonomy:
        """Validate the parsed YAML structure (``{version, topics: [...]}``). ``lines``:
        the line each topic starts on, for the errors (a file has 33 topics)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping with 'version' and 'topics'")
        unknown = set(data) - {"version", "topics"}
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(map(str, unknown))}")
        version = data.get("version")
        if not isinstance(version, (str, int)) or isinstance(version, bool):
            raise ConfigError(f"{source}: 'version' must be a string or integer")
        raw_topics = data.get("topics")
        if not isinstance(raw_topics, list) or not raw_topics:
            raise ConfigError(f"{source}: 'topics' must be a non-empty list")

        def at(i: int) -> str:
            return f"topics[{i}]" + (f", line {lines[i]}" if i < len(lines) else "")

        topics = tuple(_topic(raw, f"{source}: {at(i)}") for i, raw in enumerate(raw_topics))
        # Topics one spelling could mean are refused here, naming both: the constructor
        # said only "clashes", with neither file nor line, and names that differ only in
        # "&"/"and", spacing or punctuation were taken, then matched neither by `-t` nor
        # by a feed category spelled that way (it mapped to both).
        for spelled in (False, True):  # the same id or name first, then spellings
            seen: dict[str, tuple[int, str]] = {}
            for i, t in enumerate(topics):
                name, slug = f"name {t.name!r}", f"id {t.id!r}"
                keys: dict[str, str] = {}
                if spelled:
                    keys[normalize_category(t.name)] = name
                    keys.setdefault(normalize_category(t.id), slug)
                else:
                    keys = {f"id {t.id}": slug, f"name {t.name.casefold()}": name}
                for key, what in keys.items():
                    j, other = seen.setdefault(key, (i, what))
                    if j == i:
                        continue
                    if not spelled:
                        raise ConfigError(
                            f"{source}: {at(i)}: {what} is taken by {at(j)} ({other}): each "
                            "topic needs its own id and name, whatever their case"
                        )
                    raise ConfigError(
                        f"{source}: {at(i)}: {what} and the {other} of {at(j)} are one "
                        "topic to `-t`, labels and feed categories, which ignore case, "
                        "spacing and punctuation; rename one"
                    )
        return cls(str(version), topics)

    # -- queries --------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Topic names in taxonomy order (the model's output order)."""
        return tuple(t.name for t in self.topics)

    def get(self, name_or_id: str) -> TopicDef | None:
        """The topic with this name or id (case-insensitive; and spelled with "and" for
        "&", other spacing or punctuation, as feed categories are matched), else None."""
        found = self._by_key.get(name_or_id.strip().casefold())
        return found or self._by_spelling.get(normalize_category(name_or_id))

    def __getitem__(self, name_or_id: str) -> TopicDef:
        topic = self.get(name_or_id)
        if topic is None:
            raise KeyError(name_or_id)
        return topic

    def __contains__(self, name_or_id: object) -> bool:
        return isinstance(name_or_id, str) and self.get(name_or_id) is not None

    def __len__(self) -> int:
        return len(self.topics)

    def canonical(self, name_or_id: str) -> str:
        """The topic's canonical name; :class:`ConfigError` for an unknown topic."""
        topic = self.get(name_or_id)
        if topic is None:
            raise ConfigError(f"unknown topic {name_or_id!r}")
        return topic.name

    def resolve(self, name: str) -> TopicDef | None:
        """The topic a name from an earlier taxonomy means now (a stored label, a seed
        example): the topic it names (see :meth:`get`), else the one topic whose
        aliases claim it, as a renamed topic keeps its old name among its aliases;
        None for a topic removed (or an alias several topics claim)."""
        found = self.get(name)
        if found is not None:
            return found
        claimed = self._by_alias.get(normalize_category(name), ())
        return self._by_key[claimed[0].casefold()] if len(claimed) == 1 else None

    def nearest(self, name: str) -> str | None:
        """The topic an unknown ``name`` most likely misspells, for a "did you mean"
        hint: the topic whose name, id or alias (one only that topic claims) is spelled
        most alike, past a similarity of :data:`NEAREST_CUTOFF`; a topic's own name or
        id first. None when nothing is that close."""
        key = normalize_category(name)
        if not key:
            return None
        spellings: dict[str, str] = {}
        for topic in self.topics:
            for own in (topic.name, topic.id):
                spellings.setdefault(normalize_category(own), topic.name)
        for alias, claimants in self._by_alias.items():
            if len(claimants) == 1:
                spellings.setdefault(alias, claimants[0])
        spellings.pop("", None)
        close = difflib.get_close_matches(key, spellings, n=1, cutoff=NEAREST_CUTOFF)
        return spellings[close[0]] if close else None

    def did_you_mean(self, unknown: Sequence[str]) -> str:
        """The end of an "unknown topic" error naming the topics ``unknown`` names most
        likely misspell (see :meth:`nearest`): ": did you mean DNS?", or, of several,
        ": did you mean DNS for 'Dnss', Privacy for 'privcy'?"; "" when none is near."""
        near = [(name, topic) for name in unknown if (topic := self.nearest(name)) is not None]
        if not near:
            return ""
        if len(unknown) == 1:
            return f": did you mean {near[0][1]}?"
        return f": did you mean {', '.join(f'{t} for {n!r}' for n, t in near)}?"

    def claimants(self, alias: str) -> tuple[str, ...]:
        """Names of the topics whose aliases claim ``alias``, in taxonomy order."""
        return self.topics_for_categories([alias])

    def topics_for_categories(self, categories: Iterable[str]) -> tuple[str, ...]:
        """Topic names that feed categories map to through the aliases (and the topics'
        own names and ids), in taxonomy order, without duplicates."""
        hits: set[str] = set()
        for category in categories:
            hits.update(self._by_alias.get(normalize_category(category), ()))
        return tuple(name for name in self.names if name in hits)

    @property
    def hash(self) -> str:
        """SHA-256 of what a trained model depends on: the topics' order, ids, names and
        seed phrases. Descriptions, aliases (applied at prediction time) and the version
        label are left out so that editing them does not force a retrain."""
        payload = [[t.id, t.name, list(t.seeds)] for t in self.topics]
        blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _topic(raw: Any, where: str) -> TopicDef:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - {"id", "name", "description", "aliases", "seeds"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    topic_id = raw.get("id")
    name = raw.get("name")
    if not isinstance(topic_id, str) or not _ID_RE.match(topic_id):
        raise ConfigError(f"{where}: 'id' must be a lower-case slug like 'domain-names'")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} ({topic_id}): 'name' must be a non-empty string")
    _check_name(name, f"{where} ({topic_id})")
    description = raw.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ConfigError(f"{where} ({topic_id}): 'description' must be a string")
    return TopicDef(
        id=topic_id,
        name=name,
        description=description.strip(),
        aliases=_strings(raw.get("aliases"), f"{where} ({topic_id}).aliases"),
        seeds=_strings(raw.get("seeds"), f"{where} ({topic_id}).seeds"),
    )


def _check_name(name: str, where: str) -> None:
    """A name is what users type (`-t`, `label +Topic`, `/topics/NAME.rss`) and what
    every output prints: one line of text that means one topic however it is spelled."""
    if name != name.strip():
        raise ConfigError(f"{where}: 'name' {name!r} starts or ends with spaces")
    if len(name) > MAX_NAME:
        raise ConfigError(
            f"{where}: 'name' is {len(name):,} characters long; at most {MAX_NAME} "
            "(put the rest in 'description')"
        )
    for ch in name:
        if unicodedata.category(ch) in _BAD_NAME_CHARS or ch in _BIDI_CONTROLS:
            raise ConfigError(
                f"{where}: 'name' {name!r} holds a control character (U+{ord(ch):04X}); "
                "a name is one line of plain text"
            )
    if ";" in name:
        # the stories CSV lists a story's topics as "DNS:0.950;Privacy:0.810"
        raise ConfigError(f"{where}: 'name' {name!r} holds ';', which separates topics in CSV")
    if not normalize_category(name):
        raise ConfigError(
            f"{where}: 'name' {name!r} has no letter or digit: feed categories and `-t` "
            "ignore punctuation, so nothing could name it"
        )


def _yaml_problem(e: yaml.MarkedYAMLError) -> str:
    """What is wrong and where (", line L, column C: not valid YAML: what (context)"):
    PyYAML's own text spans four lines and names the file "<unicode string>"."""
    mark = e.problem_mark or e.context_mark
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(e.problem or e.context or "").split())
    context = " ".join(str(e.context or "").split()) if e.problem else ""
    if context and e.context_mark is not None and e.context_mark.line != getattr(mark, "line", -1):
        context += f" that starts on line {e.context_mark.line + 1}"
    return f"{where}: not valid YAML: {what}" + (f" ({context})" if context else "")


def _no_repeated_keys(node: Any, source: str) -> None:
    """Refuse a key given twice in one mapping: YAML keeps the last value silently, so
    a second ``aliases:`` under a topic dropped the first list, and a second ``topics:``
    every topic above it."""
    stack = [node]
    seen: set[int] = set()  # a YAML alias is the same node again, and may hold itself
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in n.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in first:
                        raise ConfigError(
                            f"{source}, line {line}: {key.value!r} is given twice in one "
                            f"mapping (first on line {first[key.value]}); YAML would keep "
                            "only the last"
                        )
                    first[key.value] = line
                stack.append(value)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)


def _topic_lines(node: Any) -> list[int]:
    """The line each item of the top-level ``topics`` list starts on (1-based)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "topics" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def _text_line(data: bytes, offset: int) -> int:
    """The 1-based line of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of strings")
    out: list[str] = []
    for item in value:
        # YAML turns bare 5g-like words into strings but numbers/booleans into others.
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ConfigError(f"{where}: {item!r} is not a string")
        text = " ".join(str(item).split())
        if not text:
            raise ConfigError(f"{where}: empty entry")
        if text not in out:
            out.append(text)
    return tuple(out)
