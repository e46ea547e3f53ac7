"""The news-paraphrase lexicon (monitor/paraphrase.py) in StoryIndex decisions: reworded copies of one event
merge, same-topic events told in nearly the same words stay apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.stories import StoryIndex
from monitor.story_text import analyse

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _stories(items: list[tuple[str, str]]) -> list[int]:
    """Match-or-create for each item, 3 hours apart; the story id of each."""
    index, ids = StoryIndex(), []
    for i, (title, summary) in enumerate(items):
        when = T0 + timedelta(hours=3 * i)
        m = index.match(title, summary, when)
        story = m.story_id if m else 100 + i
        index.add(i, story, title, summary, when)
        ids.append(story)
    return ids


def test_number_words_and_wire_synonyms_fold() -> None:
    a = analyse("Washington blacklists a dozen Chinese firms", "")
    b = analyse("US adds 12 China companies to Entity List", "")
    assert {"us", "entitylist", "12", "china", "company"} <= a.terms & b.terms
    assert "12" in a.numbers
    assert {"ai", "os"} <= analyse("Artificial intelligence chips for the new operating system", "").terms


def test_number_written_in_words_disagrees_with_another_number() -> None:
    ids = _stories([("US adds a dozen Chinese firms to Entity List", ""),
                    ("US adds 36 Chinese firms to Entity List", "")])
    assert ids[0] != ids[1]


def test_reworded_headline_only_copy_joins_its_story() -> None:
    summary = ("The Commerce Department proposed rules that would bar Chinese and Russian software and hardware "
               "from connected cars sold in the US, citing national security risks from data collection.")
    ids = _stories([("US proposes ban on Chinese software in connected cars", summary),
                    ("Washington plans to keep Chinese connected cars off US roads", summary),
                    ("Commerce moves to bar Chinese vehicle tech over security risks", "")])
    assert ids[0] == ids[1] == ids[2]


def test_a_body_standing_for_its_country_is_no_disagreement() -> None:
    summary = ("A Chinese J-11 fighter flew within 20 feet of a US Air Force RC-135 over the South China Sea, "
               "forcing the American crew into an evasive manoeuvre, US officials said.")
    ids = _stories([("US says Chinese fighter made unsafe intercept over South China Sea", summary),
                    ("Pentagon releases video of risky Chinese fighter intercept", "")])
    assert ids[0] == ids[1]


def test_two_bodies_of_one_country_are_two_stories() -> None:
    ids = _stories([("TikTok CEO testifies before Congress", ""),
                    ("TikTok CEO testifies before Senate on child safety", "")])
    assert ids[0] != ids[1]


def test_different_acts_at_sea_are_two_incidents() -> None:
    ids = _stories([("Chinese coast guard fires water cannon at Philippine vessel", ""),
                    ("Chinese coast guard rams Philippine vessel", "")])
    assert ids[0] != ids[1]


def test_one_incident_with_two_acts_stays_one_story() -> None:
    summary = ("Manila said Chinese coast guard ships rammed two Philippine supply boats and fired water cannon "
               "at them near Second Thomas Shoal, injuring four sailors.")
    ids = _stories([("Philippines accuses China of ramming supply boats at Second Thomas Shoal", summary),
                    ("Chinese coast guard water cannon injures Filipino sailors", "")])
    assert ids[0] == ids[1]


def test_a_first_step_and_the_end_are_two_stories() -> None:
    ids = _stories([("US moves to curb de minimis imports used by Shein and Temu", ""),
                    ("End of de minimis hits Shein and Temu shoppers", "")])
    assert ids[0] != ids[1]
