"""The CPU-bound steps of a feed update, as top-level functions that run in worker
processes (picklable, importing only what they use). No I/O, no database.
"""

from __future__ import annotations

from .types import Article, ParsedFeed, StoryDraft


def parse_job(
    body: bytes, url: str, content_type: str | None
) -> tuple[ParsedFeed, list[StoryDraft]]:
    """Bytes -> parsed feed and the stories it holds, with their identities."""
    from .dedupe import story_drafts
    from .parse import parse_feed

    parsed = parse_feed(body, url, content_type=content_type)
    return parsed, story_drafts(parsed)


def extract_job(html: bytes, url: str) -> Article | None:
    from .extract import extract_article

    return extract_article(html, url)
