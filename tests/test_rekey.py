"""Store migration 20: canonical URLs and the story keys made of them, as an older
aggregator stored them (``xtor`` and ``WT.mc_id`` kept, hosts in IDNA 2003), brought to
today's canonical form, so that the next poll of a feed keyed by links finds its stories
instead of storing each again. Real SQLite and PostgreSQL stores; the feed read by the
real parser."""

from __future__ import annotations

from contextlib import closing

from sqlalchemy import text
from test_store import T0, check, draft

from aggregator.dedupe import listing_digest, story_drafts
from aggregator.parse import parse_feed
from aggregator.store import open_store
from aggregator.types import FeedSource, StoryRecord

FEED_URL = "https://presse.example.fr/rss"
# RSS 0.91: no guids, so each story is keyed by its canonical link
RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="0.91"><channel><title>Le Fil</title><link>https://presse.example.fr/</link>
<description>d</description>
<item><title>Un</title><link>https://presse.example.fr/un.html?xtor=RSS-3208</link>
<description>Premier texte.</description></item>
<item><title>Zwei</title><link>https://faß.example.de/zwei</link>
<description>Zweiter Text.</description></item>
<item><title>Trois</title><link>https://presse.example.fr/trois.html?WT.mc_id=rss&amp;id=3</link>
<description>Troisième texte.</description></item>
<item><title>Quatre</title><link>https://presse.example.fr/quatre.html?ns_source=rss</link>
<description>Quatrième texte.</description></item>
</channel></rss>""".encode()

# what an older aggregator made of each link: (today's canonical URL, the older one)
FORMS = {
    "Un": ("https://presse.example.fr/un.html", "https://presse.example.fr/un.html?xtor=RSS-3208"),
    "Zwei": ("https://xn--fa-hia.example.de/zwei", "https://fass.example.de/zwei"),
    "Trois": (
        "https://presse.example.fr/trois.html?id=3",
        "https://presse.example.fr/trois.html?WT.mc_id=rss&id=3",
    ),
    "Quatre": (
        "https://presse.example.fr/quatre.html",
        "https://presse.example.fr/quatre.html?ns_source=rss",
    ),
}
EPISODE_PAGE = "https://presse.example.fr/episode.html"
ENCLOSURE = (
    "v1:enclosure:https://cdn.example/ep.mp3",
    "v1:enclosure:https://cdn.example/ep.mp3?xtor=1",
)


def _rows(st: object) -> dict[str, tuple[str, str | None]]:
    with st.engine.connect() as c:  # type: ignore[attr-defined]
        rows = c.execute(text("SELECT title, key, canonical_url FROM story")).all()
    return {title: (key, url) for title, key, url in rows}


def _listed(st: object, feed_id: int) -> set[str]:
    with st.engine.connect() as c:  # type: ignore[attr-defined]
        listed = c.execute(text("SELECT listed FROM feed WHERE id = :f"), {"f": feed_id}).scalar()
    return set(listed.split())


def test_an_older_stores_links_and_keys_take_todays_canonical_form(db_url: str) -> None:
    drafts = story_drafts(parse_feed(RSS, FEED_URL))
    assert {d.title: d.canonical_url for d in drafts} == {t: f[0] for t, f in FORMS.items()}
    records = [StoryRecord(draft=d) for d in drafts]
    listed = tuple(listing_digest(d.key) for d in drafts)
    with closing(open_store(db_url)) as st:
        feed, _ = st.add_feed(FeedSource(url=FEED_URL), T0)
        st.save_update(check(feed.id, listed=listed), records)
        with st.engine.begin() as c:  # as an older aggregator stored them
            for title, (_, old) in FORMS.items():
                c.execute(
                    text("UPDATE story SET key = :k, canonical_url = :u WHERE title = :t"),
                    {"k": "v1:link:" + old, "u": old, "t": title},
                )
        # a podcast episode keyed by its enclosure, and a copy of "Quatre" the feed holds
        # under today's key already (the older key of the other copy then stays)
        st.save_update(
            check(feed.id),
            [
                StoryRecord(
                    draft=draft(ENCLOSURE[1], "Episode", link=EPISODE_PAGE + "?xtor=2", h="e")
                ),
                StoryRecord(draft=draft("v1:link:" + FORMS["Quatre"][0], "Quatre copy", h="q")),
            ],
        )
        with st.engine.begin() as c:
            older = [listing_digest("v1:link:" + old) for _, old in FORMS.values()]
            c.execute(
                text("UPDATE feed SET listed = :l WHERE id = :f"),
                {"l": " ".join([*older, listing_digest(ENCLOSURE[1])]), "f": feed.id},
            )
            c.execute(text("DELETE FROM schema_version WHERE version = 20"))
        feed_id = feed.id
    with closing(open_store(db_url)) as st:
        rows = _rows(st)
        for title in ("Un", "Zwei", "Trois"):
            assert rows[title] == ("v1:link:" + FORMS[title][0], FORMS[title][0]), title
        # its canonical URL moves, its key would be another story's: it stays
        assert rows["Quatre"] == ("v1:link:" + FORMS["Quatre"][1], FORMS["Quatre"][0])
        assert rows["Episode"] == (ENCLOSURE[0], EPISODE_PAGE)  # its key and its URL
        assert _listed(st, feed_id) == {
            *(listing_digest("v1:link:" + FORMS[t][0]) for t in ("Un", "Zwei", "Trois")),
            listing_digest("v1:link:" + FORMS["Quatre"][1]),
            listing_digest(ENCLOSURE[0]),
        }
        # the next poll finds the stories it lists: nothing stored twice
        before = st.story_count()
        result = st.save_update(check(feed_id, at=T0, listed=listed), records)
        assert result.new == () and st.story_count() == before
