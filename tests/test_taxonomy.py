"""Taxonomy loading, alias matching, hashing and validation (aggregator.taxonomy)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from aggregator.errors import ConfigError
from aggregator.taxonomy import Taxonomy, normalize_category

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models" / "taxonomy.yaml"

REQUIRED_NAMES = [
    "Cybersecurity",
    "Cyberattack",
    "Cybercrime",
    "Threat Intelligence",
    "Malware",
    "Privacy",
    "Law",
    "Policy & Regulation",
    "Internet Governance",
    "DNS",
    "DNS Security",
    "Domain Names",
    "New TLDs",
    "Registry Services",
    "UDRP",
    "Brand Protection",
    "IP Addressing",
    "IPv4 Markets",
    "IPv6",
    "Regional Registries",
    "Networks",
    "Telecom",
    "Broadband",
    "Wireless",
    "Internet of Things",
    "Cloud Computing",
    "Email",
    "Spam",
    "Net Neutrality",
    "Censorship",
    "Blockchain",
    "Artificial Intelligence",
    "Coronavirus",
]

SMALL = {
    "version": 3,
    "topics": [
        {
            "id": "domain-names",
            "name": "Domain Names",
            "description": "Domains.",
            "aliases": ["domains", "domaining"],
            "seeds": ["domain name", "registrar"],
        },
        {
            "id": "policy-regulation",
            "name": "Policy & Regulation",
            "aliases": ["policy", "regulation"],
            "seeds": ["regulator"],
        },
        {"id": "ipv4-markets", "name": "IPv4 Markets", "aliases": ["ipv4", "domains"]},
    ],
}


def write(tmp_path: Path, data: object, name: str = "taxonomy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def small(tmp_path: Path) -> Taxonomy:
    return Taxonomy.load(write(tmp_path, SMALL))


def test_shipped_taxonomy_has_the_required_topics() -> None:
    taxonomy = Taxonomy.load(SHIPPED)
    assert list(taxonomy.names) == REQUIRED_NAMES
    ids = [t.id for t in taxonomy.topics]
    assert len(set(ids)) == len(ids)
    assert taxonomy.version
    for topic in taxonomy.topics:
        assert topic.description, topic.name
        assert topic.aliases, topic.name
        assert len(topic.seeds) >= 10, topic.name


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        (["Domain Names"], ("Domain Names",)),
        (["DOMAIN-NAMES"], ("Domain Names",)),
        (["  domain_names "], ("Domain Names",)),
        (["domain-names"], ("Domain Names",)),  # the id
        (["Policy and Regulation"], ("Policy & Regulation",)),
        (["policy-&-regulation"], ("Policy & Regulation",)),
        (["Regulation", "Domaining"], ("Domain Names", "Policy & Regulation")),
        (["domains"], ("Domain Names", "IPv4 Markets")),  # an alias shared by two topics
        (["IPv4", "ipv4", "I.P.v.4"], ("IPv4 Markets",)),
        (["sports", "", "!!"], ()),
        ([], ()),
    ],
    ids=[
        "name",
        "upper-hyphen",
        "underscore-spaces",
        "id",
        "and-for-ampersand",
        "ampersand-punct",
        "taxonomy-order",
        "shared-alias",
        "duplicates-collapse",
        "unknown",
        "empty",
    ],
)
def test_topics_for_categories(
    small: Taxonomy, categories: list[str], expected: tuple[str, ...]
) -> None:
    assert small.topics_for_categories(categories) == expected


def test_lookup_is_case_insensitive_by_name_and_id(small: Taxonomy) -> None:
    assert small.get("domain names") is small.get("DOMAIN-NAMES") is small["Domain Names"]
    assert small.canonical("policy & REGULATION") == "Policy & Regulation"
    assert "ipv4 markets" in small
    assert small.get("Sports") is None
    with pytest.raises(ConfigError, match="unknown topic"):
        small.canonical("Sports")
    with pytest.raises(KeyError):
        small["Sports"]


def test_hash_covers_names_and_seeds_not_descriptions_or_aliases(tmp_path: Path) -> None:
    base = Taxonomy.load(write(tmp_path, SMALL, "a.yaml")).hash
    same = Taxonomy.load(write(tmp_path, SMALL, "b.yaml")).hash
    assert base == same and len(base) == 64

    cosmetic = yaml.safe_load(yaml.safe_dump(SMALL))
    cosmetic["version"] = 4
    cosmetic["topics"][0]["description"] = "Something else."
    cosmetic["topics"][0]["aliases"].append("dot-com")
    assert Taxonomy.load(write(tmp_path, cosmetic, "c.yaml")).hash == base

    reseeded = yaml.safe_load(yaml.safe_dump(SMALL))
    reseeded["topics"][0]["seeds"].append("aftermarket")
    assert Taxonomy.load(write(tmp_path, reseeded, "d.yaml")).hash != base

    renamed = yaml.safe_load(yaml.safe_dump(SMALL))
    renamed["topics"][2]["name"] = "IPv4 Trading"
    assert Taxonomy.load(write(tmp_path, renamed, "e.yaml")).hash != base


def _broken(change: str) -> object:
    data = yaml.safe_load(yaml.safe_dump(SMALL))
    topic = data["topics"][0]
    if change == "no-topics":
        del data["topics"]
    elif change == "empty-topics":
        data["topics"] = []
    elif change == "not-a-mapping":
        return ["just", "a", "list"]
    elif change == "bad-id":
        topic["id"] = "Domain Names"
    elif change == "missing-name":
        del topic["name"]
    elif change == "duplicate-name":
        data["topics"][1]["name"] = "domain names"
    elif change == "duplicate-id":
        data["topics"][1]["id"] = "domain-names"
    elif change == "aliases-not-list":
        topic["aliases"] = "domains"
    elif change == "seed-not-string":
        topic["seeds"] = ["ok", {"nested": 1}]
    elif change == "unknown-key":
        topic["colour"] = "blue"
    elif change == "no-version":
        del data["version"]
    return data


@pytest.mark.parametrize(
    "change",
    [
        "no-topics",
        "empty-topics",
        "not-a-mapping",
        "bad-id",
        "missing-name",
        "duplicate-name",
        "duplicate-id",
        "aliases-not-list",
        "seed-not-string",
        "unknown-key",
        "no-version",
    ],
)
def test_malformed_taxonomy_is_a_config_error(tmp_path: Path, change: str) -> None:
    with pytest.raises(ConfigError):
        Taxonomy.load(write(tmp_path, _broken(change)))


def test_missing_or_unparsable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Taxonomy.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Taxonomy.load(bad)


@pytest.mark.parametrize("value", ["2024-02-30", "!!int x", "!!bool maybe"])
def test_a_value_yaml_cannot_build_is_a_config_error(tmp_path: Path, value: str) -> None:
    """`version: 2024-02-30` (a date with no such day) was a ValueError traceback."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"version: {value}\ntopics: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML: a value cannot be read"):
        Taxonomy.load(bad)


def test_a_file_is_read_at_every_load_and_parsed_once_per_text(tmp_path: Path) -> None:
    """Every App loads the taxonomy: an unchanged file gives the same (immutable) object
    without parsing it again, and any change, even of the same size at once, is seen."""
    path = write(tmp_path, SMALL)
    text = path.read_text(encoding="utf-8")
    first = Taxonomy.load(path)
    assert Taxonomy.load(path) is first
    edited = text.replace("IPv4 Markets", "IPv6 Markets")
    assert len(edited) == len(text) and edited != text
    path.write_text(edited, encoding="utf-8")
    again = Taxonomy.load(path)
    assert again is not first and "IPv6 Markets" in again.names
    assert "IPv4 Markets" not in again.names
    other = tmp_path / "other.yaml"  # the same text elsewhere: its errors name that file
    other.write_text(edited, encoding="utf-8")
    assert Taxonomy.load(other) == again
    path.write_text("topics: [", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"taxonomy\.yaml"):
        Taxonomy.load(path)  # a broken file is an error, not the last good parse
    path.write_text(text, encoding="utf-8")
    assert Taxonomy.load(path) is first


def test_importing_taxonomy_stays_light() -> None:
    code = (
        "import sys, aggregator.taxonomy; "
        "heavy = [m for m in ('sklearn', 'numpy', 'scipy', 'joblib', 'aggregator.classify') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


_SEPARATORS = st.sampled_from([" ", "-", "_", ".", "/", "  ", ""])


@functools.cache
def _shipped() -> Taxonomy:
    """The shipped taxonomy, read once for all of hypothesis's examples (a frozen value)."""
    return Taxonomy.load(SHIPPED)


@given(st.data())
def test_every_alias_survives_case_and_punctuation_noise(data: st.DataObject) -> None:
    taxonomy = _shipped()
    topic = data.draw(st.sampled_from(taxonomy.topics))
    alias = data.draw(st.sampled_from((topic.name, topic.id, *topic.aliases)))
    noisy = "".join(
        (ch.upper() if data.draw(st.booleans()) else ch.lower())
        + (data.draw(_SEPARATORS) if ch == " " else "")
        for ch in alias
    )
    noisy = data.draw(_SEPARATORS) + noisy + data.draw(_SEPARATORS)
    assert topic.name in taxonomy.topics_for_categories([noisy])
    assert normalize_category(noisy) == normalize_category(alias)
