"""The topic taxonomy (``models/taxonomy.yaml``): topic definitions, feed-category aliases
and the hash that ties a trained model to the taxonomy it was trained on.

Light on purpose: stdlib and PyYAML only, because query commands import it. It must not
import scikit-learn, numpy or anything from the classifier.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aggregator.config import YAML_LOADER
from aggregator.errors import ConfigError

__all__ = ["Taxonomy", "TopicDef", "normalize_category"]

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_category(value: str) -> str:
    """The key a feed category string is matched by: case, whitespace and punctuation
    removed, "&" read as "and" ("Policy & Regulation" == "policy-and-regulation")."""
    text = unicodedata.normalize("NFKC", value).casefold().replace("&", " and ")
    return _NON_ALNUM.sub("", text)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicDef:
    """One topic: ``aliases`` are feed category strings that mean it; ``seeds`` are
    phrases the classifier uses as evidence for it."""

    id: str
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()


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
        missing, not YAML or malformed."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read taxonomy {path}: {e.strerror or e}") from e
        try:
            data = yaml.load(text, Loader=YAML_LOADER)
        except yaml.YAMLError as e:
            raise ConfigError(f"taxonomy {path} is not valid YAML: {e}") from e
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: object, *, source: str = "taxonomy") -> Taxonomy:
        """Validate the parsed YAML structure (``{version, topics: [...]}``)."""
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
        topics = tuple(_topic(raw, f"{source}: topics[{i}]") for i, raw in enumerate(raw_topics))
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
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ConfigError(f"{where} ({topic_id}): 'name' must be a non-empty string")
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
