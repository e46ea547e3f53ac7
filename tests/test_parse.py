from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.errors import ParseError
from monitor.parse import clean_text, parse_feed

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _parse(body: str | bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    data = body.encode() if isinstance(body, str) else body
    return parse_feed(data, headers or {}, "https://site.example/feed/", 1, "Site", ("tag",), NOW)


def test_rss_entries_are_normalized() -> None:
    parsed = _parse("""<?xml version="1.0"?><rss version="2.0"><channel><title>Site</title><ttl>30</ttl>
      <item><title>Chips &amp;amp; &#8220;curbs&#8221;</title><link>/news/1</link><guid isPermaLink="false">g1</guid>
        <pubDate>Tue, 03 Dec 2024 08:45:00 +0800</pubDate><author>a@site.example (Ann)</author><category>Tech</category>
        <description>&lt;p&gt;First&amp;nbsp;line&lt;/p&gt;&lt;script&gt;bad()&lt;/script&gt;&lt;p&gt;second   line&lt;/p&gt;</description></item>
      <item><title>No date</title><link>https://site.example/news/2</link></item>
      <item><title>From the future</title><link>https://site.example/news/3</link><pubDate>Fri, 01 Jan 2038 00:00:00 GMT</pubDate></item>
    </channel></rss>""")
    first, no_date, future = parsed.entries
    assert first.title == "Chips & \u201ccurbs\u201d"
    assert first.summary == "First line second line"
    assert first.link == "https://site.example/news/1"
    assert first.guid == "g1"
    assert first.published == datetime(2024, 12, 3, 0, 45, tzinfo=UTC) and first.published_known
    assert first.tags == ("Tech",) and first.feed_tags == ("tag",)
    assert no_date.published == NOW and not no_date.published_known
    assert no_date.guid == "https://site.example/news/2"
    assert future.published == NOW and not future.published_known
    assert parsed.ttl_s == 1800


def test_atom_with_content_and_broken_entry_is_kept_partially() -> None:
    parsed = _parse("""<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
      <entry><id>urn:1</id><title type="html">&lt;b&gt;Bold&lt;/b&gt; title</title><updated>2024-12-04T20:00:00Z</updated>
        <content type="html">&lt;p&gt;Body text&lt;/p&gt;</content><link href="https://a.example/1"/></entry>
      <entry><id>urn:2</id></entry>
    </feed>""")
    assert [e.title for e in parsed.entries] == ["Bold title"]
    assert parsed.entries[0].summary == "Body text"
    assert parsed.skipped == 1


@pytest.mark.parametrize("body, reason", [
    (b"", "empty body"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML page"),
    (b"\x00\x01\x02garbage" * 10, "not a feed"),
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aa">]><rss><channel><title>&a;</title></channel></rss>',
     "declares XML entities"),
])
def test_non_feeds_raise_parse_error_with_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        _parse(body)


def test_clean_text_decodes_double_escaped_entities_and_folds_space() -> None:
    assert clean_text("Beijing&amp;#8217;s  <i>new</i>\n rules") == "Beijing\u2019s new rules"
    assert clean_text("plain") == "plain"


@pytest.mark.parametrize(("html_text", "text"), [
    ("<p>one</p><p>two</p>", "one two"),  # block tags separate words
    ("in<b>line</b> tags", "inline tags"),  # inline tags do not
    ("a < b and c > d", "a < b and c > d"),  # a "<" that opens no tag is text
    ("<a title='x>y' href=\"/z\">link</a> text", "link text"),  # ">" inside a quoted attribute value
    ("<!-- note --> after <![CDATA[hidden]]>", "after"),
    ("keep<style>p {x: 1}</style> this<script>bad()", "keep this"),  # unclosed script: dropped to the end
    ("&lt;b&gt;escaped markup&lt;/b&gt;", "<b>escaped markup</b>"),  # escaped markup is text, not a tag
])
def test_clean_text_edge_cases(html_text: str, text: str) -> None:
    assert clean_text(html_text) == text
