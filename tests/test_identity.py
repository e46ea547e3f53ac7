from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.identity import canonical_url, entry_guid, text_key


def test_tracking_parameters_fragments_case_ports_and_slashes_are_ignored() -> None:
    base = canonical_url("https://example.com/news/story-1?id=7")
    variants = [
        "https://example.com/news/story-1?id=7&utm_source=rss&utm_medium=feed",
        "http://EXAMPLE.com:80/news/story-1/?id=7#comments",
        "https://www.example.com:443/news/story-1?fbclid=abc&id=7",
        "HTTPS://Example.COM/news//story-1?gclid=1&id=7&mc_cid=x",
    ]
    assert all(canonical_url(v) == base for v in variants)


def test_content_parameters_and_paths_are_kept() -> None:
    assert canonical_url("https://e.com/a?id=1") != canonical_url("https://e.com/a?id=2")
    assert canonical_url("https://e.com/a") != canonical_url("https://e.com/b")
    assert canonical_url("https://e.com:8443/a") != canonical_url("https://e.com/a")


def test_non_web_urls_and_garbage_pass_through() -> None:
    assert canonical_url("urn:uuid:1234") == "urn:uuid:1234"
    assert canonical_url("") == ""
    assert canonical_url("http://[bad") == "http://[bad"


def test_entry_identity_policy() -> None:
    assert entry_guid(" guid-1 ", "https://e.com/x", "t", "s") == "guid-1"
    assert entry_guid(None, "https://e.com/x?utm_source=a", "t", "s") == "https://e.com/x"
    assert entry_guid("", "", "Title", "Body").startswith("text:")
    assert text_key("A  title!", "body") == text_key("a title", "BODY")


urls = st.builds(lambda host, path, q, frag: f"https://{host}.com/{path}?{q}#{frag}",
                 st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.from_regex(r"[a-z0-9/]{0,12}", fullmatch=True),
                 st.from_regex(r"(utm_source=[a-z]{1,4}&)?k=[0-9]{1,3}", fullmatch=True),
                 st.from_regex(r"[a-z]{0,5}", fullmatch=True))


@given(urls)
def test_canonicalization_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "utm_" not in once and "#" not in once
