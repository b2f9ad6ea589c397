"""Topic filters beyond "all of these": ``--any-topic`` (at least one of them) and
``--not-topic`` (none of them), in the store on SQLite and PostgreSQL, through
`stories` and `export`, and as ``any_topic`` / ``not_topic`` on `serve`'s feeds."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree
from test_learning_cli import env, run  # noqa: F401  (env: fixture)
from test_store import check, draft, pred, store  # noqa: F401  (store: fixture)

from aggregator.app import make_app
from aggregator.config import Settings
from aggregator.errors import NotFoundError
from aggregator.export import ATOM_NS
from aggregator.serve import FeedServer
from aggregator.types import FeedSource, StoryQuery, StoryRecord

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# title: topics, newest last
STORIES = {
    "Resolver outage": ("DNS",),
    "Registrar breach": ("Cybersecurity",),
    "IPv4 block sold": ("IPv4 Markets",),
    "DNS tunnelling malware": ("DNS", "Cybersecurity"),
    "Football results": (),
}


def _save_all(st, feed_id: int) -> None:  # type: ignore[no-untyped-def]
    st.save_update(
        check(feed_id),
        [
            StoryRecord(
                draft=draft(
                    f"k{i}", title, link=f"https://n.example/{i}", published=T0 + timedelta(i)
                ),
                prediction=pred(*((t, 0.9) for t in topics)),
            )
            for i, (title, topics) in enumerate(STORIES.items())
        ],
    )


def test_any_and_not_topics_in_the_store(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _save_all(store, store.get_feed("https://a.example/feed").id)

    def titles(**kw: tuple[str, ...]) -> list[str]:
        return [s.title for s in store.stories(StoryQuery(**kw))]  # type: ignore[arg-type]

    assert titles(any_topics=("DNS", "IPv4 Markets")) == [
        "DNS tunnelling malware",
        "IPv4 block sold",
        "Resolver outage",
    ]
    assert titles(not_topics=("Cybersecurity",)) == [
        "Football results",
        "IPv4 block sold",
        "Resolver outage",
    ]
    assert titles(not_topics=("Cybersecurity", "DNS")) == ["Football results", "IPv4 block sold"]
    # all three kinds together: DNS, and Cybersecurity or IPv4, and not Domain Names
    assert titles(topics=("DNS",), any_topics=("Cybersecurity", "IPv4 Markets")) == [
        "DNS tunnelling malware"
    ]
    assert titles(any_topics=("Cybersecurity", "IPv4 Markets"), not_topics=("dns",)) == [
        "IPv4 block sold",
        "Registrar breach",
    ]
    for kw in ({"any_topics": ("Gardening",)}, {"not_topics": ("DNS", "Gardening")}):
        with pytest.raises(NotFoundError, match=r"unknown topic.*Gardening"):
            store.stories(StoryQuery(**kw))  # type: ignore[arg-type]


def test_a_cluster_shows_its_first_copy_that_passes_the_filter(store) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """One story in two feeds, tagged differently by each copy's text: leaving out one
    copy's topic shows the other copy, not nothing and not both."""
    a = store.get_feed("https://a.example/feed")
    b = store.get_feed("https://b.example/feed")
    link = "https://n.example/story"
    (first,) = store.save_update(
        check(a.id),
        [StoryRecord(draft=draft("a1", "Registry hit", link=link), prediction=pred(("DNS", 0.9)))],
    ).new
    (copy,) = store.save_update(
        check(b.id, at=T0 + timedelta(minutes=5)),
        [
            StoryRecord(
                draft=draft("b1", "Registry hit", link=link),
                prediction=pred(("Cybersecurity", 0.9)),
            )
        ],
    ).new
    ids = lambda **kw: [s.id for s in store.stories(StoryQuery(**kw))]  # noqa: E731
    assert ids() == [first]
    assert ids(not_topics=("DNS",)) == [copy]
    assert ids(any_topics=("DNS", "Cybersecurity")) == [first]
    assert ids(not_topics=("DNS", "Cybersecurity")) == []


def test_a_recent_page_agrees_with_the_whole_list(tmp_path: Path) -> None:
    """SQLite looks for a filtered page among the newest stories first (queries._recent_page,
    over 2,000 of them); it must give what gathering every match gives."""
    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: T0) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed"), T0)
        names = ["DNS", "Cybersecurity", "IPv4 Markets", "Privacy"]
        tagged: dict[int, set[str]] = {}
        for batch in range(6):
            records = []
            for j in range(500):
                i = batch * 500 + j
                topics = {names[k] for k in range(4) if (i >> k) % 3 == 0}
                records.append(
                    StoryRecord(
                        draft=draft(f"k{i}", f"Story {i}", published=T0 - timedelta(minutes=i)),
                        prediction=pred(*((t, 0.9) for t in sorted(topics))),
                    )
                )
            saved = app.store.save_update(check(feed.id, at=T0), records).new
            for sid, rec in zip(saved, records, strict=True):
                assert rec.prediction is not None
                tagged[sid] = {t.topic for t in rec.prediction.topics}
        # ids were given in the order of the dates, newest first: the list is by id
        for kw, keep in (
            ({"any_topics": ("DNS", "Privacy")}, lambda t: bool(t & {"DNS", "Privacy"})),
            ({"not_topics": ("Cybersecurity",)}, lambda t: "Cybersecurity" not in t),
            (
                {"topics": ("DNS",), "not_topics": ("IPv4 Markets",)},
                lambda t: "DNS" in t and "IPv4 Markets" not in t,
            ),
        ):
            expected = [sid for sid in sorted(tagged) if keep(tagged[sid])]
            for limit, offset in ((50, 0), (50, 100), (None, 0)):
                got = [st.id for st in app.stories(StoryQuery(limit=limit, offset=offset, **kw))]  # type: ignore[arg-type]
                want = expected[offset : None if limit is None else offset + limit]
                assert got == want, (kw, limit, offset)


def test_stories_and_export_take_any_and_not_topics(
    env: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    with make_app(Settings.from_env({}, data_dir=env / "data"), now=lambda: T0) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed"), T0)
        _save_all(app.store, feed.id)
    code, out, err = run(
        capsys, "stories", "--any-topic", "dns", "--any-topic", "ipv4", "--not-topic",
        "Cybersecurity", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert [s["title"] for s in json.loads(out)] == ["IPv4 block sold", "Resolver outage"]
    code, out, err = run(capsys, "export", "--not-topic", "DNS", "--not-topic", "Cybersecurity")
    assert code == 0, err
    root = etree.fromstring(out.encode())
    atom = f"{{{ATOM_NS}}}"
    assert root.findtext(f"{atom}title") == "aggregator — not DNS, Cybersecurity"
    assert [e.findtext(f"{atom}title") for e in root.iter(f"{atom}entry")] == [
        "Football results",
        "IPv4 block sold",
    ]
    # wanted and left out at once: no story can match, which is said, not listed as none
    for argv in (("-t", "DNS", "--not-topic", "dns"), ("--any-topic", "DNS", "--not-topic", "DNS")):
        code, out, err = run(capsys, "stories", *argv)
        assert code == 2 and "both wanted and left out" in err, err
    code, out, err = run(capsys, "stories", "--not-topic", "Gardening")
    assert code == 2 and "unknown topic 'Gardening'" in err


def test_serve_takes_any_topic_and_not_topic(tmp_path: Path) -> None:
    s = Settings.from_env({}, data_dir=tmp_path / "data")
    with make_app(s, now=lambda: T0) as app:
        feed, _ = app.store.add_feed(FeedSource(url="https://a.example/feed"), T0)
        _save_all(app.store, feed.id)
        with FeedServer(app) as srv:
            url = (
                srv.url
                + "/feed.json?any_topic=DNS&any_topic=IPv4%20Markets&not_topic=Cybersecurity"
            )
            with urllib.request.urlopen(url, timeout=10) as r:
                doc = json.loads(r.read())
            assert [i["title"] for i in doc["items"]] == ["IPv4 block sold", "Resolver outage"]
            bad = srv.url + "/topics/DNS.atom?not_topic=DNS"
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(bad, timeout=10)
            assert e.value.code == 400
