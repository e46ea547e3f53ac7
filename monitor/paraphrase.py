"""News-paraphrase lexicon for story clustering (:mod:`monitor.story_text`, used by :mod:`monitor.stories`).

Outlets reword one wire story's headline freely: "Washington blacklists a dozen Chinese firms" and "US adds 12
China companies to Entity List" are one event. These tables fold the usual equivalent wordings of the domain
(US-China technology, trade and security news) into one term each, so that a bag of words can see them.
Only general equivalences belong here: words that a wire editor would swap without changing the facts.
Words that change the facts ("proposes" / "finalises", "rams" / "fires water cannon at") must stay apart;
the stage and act tables below say which such words make two headlines two stories.

Plain data, loaded once with :mod:`monitor.story_text`; the stemmer runs after the folding, so an entry names the
form a headline uses and the term it becomes.
"""

from __future__ import annotations

# Number words, as the digits a rewrite may use instead: "a dozen Chinese firms" is "12 Chinese firms".
# "one" is left out (it is mostly not a count: "one of", "one-year"), and so is the plural "dozens".
NUMBER_WORDS: dict[str, str] = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12", "twenty": "20", "fifty": "50",
}

# Word sequences folded into one term (the first word of each is looked up per token, so keep them few).
PHRASES: dict[tuple[str, ...], str] = {
    ("artificial", "intelligence"): "ai",
    ("operating", "system"): "os", ("operating", "systems"): "os",
    ("rare", "earth"): "rareearth", ("rare", "earths"): "rareearth",
    ("critical", "minerals"): "mineral", ("critical", "mineral"): "mineral",
    ("spy", "agency"): "intelligence", ("spy", "agencies"): "intelligence",
    ("intelligence", "agency"): "intelligence", ("intelligence", "agencies"): "intelligence",
    ("intelligence", "service"): "intelligence", ("intelligence", "services"): "intelligence",
    ("ministry", "of", "state", "security"): "mss", ("state", "security", "ministry"): "mss",
    ("justice", "department"): "doj", ("department", "of", "justice"): "doj",
    ("defense", "department"): "pentagon", ("defence", "department"): "pentagon",
    ("department", "of", "defense"): "pentagon",
    ("people", "liberation", "army"): "pla",
    ("war", "games"): "drill",
    ("shut", "down"): "shut", ("shuts", "down"): "shut", ("shutting", "down"): "shut",
    ("wind", "up"): "shut", ("winds", "up"): "shut", ("wound", "up"): "shut",
    ("crack", "down"): "restrict", ("cracks", "down"): "restrict", ("clamp", "down"): "restrict",
    ("clamps", "down"): "restrict",
    # "moves to ban" is the first step, as "proposes a ban" is
    ("moves", "to"): "propose", ("move", "to"): "propose",
    ("sails", "through"): "pass", ("sail", "through"): "pass",
    ("hits", "back"): "retaliate", ("hit", "back"): "retaliate", ("strikes", "back"): "retaliate",
}

# Single words folded into the term a rewrite would use instead.
SYNONYMS: dict[str, str] = {
    **NUMBER_WORDS,
    # restricting: export "controls" are restrictions, and rules "tighten" them
    **dict.fromkeys(["control", "controls", "tighten", "tightens", "tightened", "tightening", "outlaw",
                     "outlaws", "outlawed", "crackdown"], "restrict"),
    # accusing and blaming
    **dict.fromkeys(["accuses", "accused", "accusing", "accusation", "accusations", "blame", "blames",
                     "blamed", "blaming"], "accuse"),
    # spying and stealing
    **dict.fromkeys(["cyberespionage", "spied"], "spy"),
    **dict.fromkeys(["stole", "stolen", "steals", "stealing", "theft", "thefts"], "steal"),
    # companies and their kinds
    **dict.fromkeys(["businesses", "corporations", "corporation", "enterprises"], "company"),
    "chipmaking": "chip",
    **dict.fromkeys(["automaker", "automakers", "carmaker", "carmakers"], "carmaker"),
    "ev": "car",
    **dict.fromkeys(["start-up", "startups"], "startup"),
    **dict.fromkeys(["tool", "tools", "gear", "machinery"], "equipment"),
    **dict.fromkeys(["telecoms", "telecommunication", "telecommunications", "telcos", "telco"], "telecom"),
    **dict.fromkeys(["smartphone", "smartphones", "handset", "handsets", "phones"], "phone"),
    **dict.fromkeys(["metal", "metals", "minerals"], "mineral"),
    # rank
    **dict.fromkeys(["biggest", "largest"], "top"),
    # armed forces and ships
    **dict.fromkeys(["army", "armed", "troops"], "military"),
    **dict.fromkeys(["warship", "warships", "destroyer", "destroyers", "frigate"], "ship"),
    **dict.fromkeys(["encircle", "encircles", "encircling", "encircled", "surround", "surrounds",
                     "surrounding", "surrounded"], "encircle"),
    # meetings and agreements
    **dict.fromkeys(["talks", "meeting", "meetings", "meets", "met", "summit"], "meet"),
    **dict.fromkeys(["agreement", "agreements", "pact", "accord"], "deal"),
    # money
    **dict.fromkeys(["grants", "subsidy", "subsidies", "funding", "award", "awarded", "awards"], "grant"),
    **dict.fromkeys(["fines", "fined", "penalty", "penalties"], "fine"),
    **dict.fromkeys(["antitrust", "monopoly"], "antitrust"),
    # closing down
    **dict.fromkeys(["shuts", "closes", "closure", "dissolve", "dissolves", "dissolution", "liquidate",
                     "liquidation", "liquidates"], "shut"),
    # falling numbers
    **dict.fromkeys(["fell", "falls", "decline", "declines", "declined", "shrink", "shrinks", "shrank"], "fall"),
    # retaliation
    **dict.fromkeys(["retaliates", "retaliated", "retaliation", "retaliatory", "reprisal"], "retaliate"),
    # a bill before a vote ("measure" in the singular: "measures" are policy steps)
    "measure": "bill",
    # visits
    **dict.fromkeys(["trip", "visits", "visited", "visiting"], "visit"),
    **dict.fromkeys(["arrives", "arrived", "lands", "landed"], "arrive"),
}

# Bodies that stand for their country (and for what they are): a headline that names "the Pentagon" or
# "Commerce" says "US" too, and one that names "the NSA" says "a US spy agency". These implied terms are added
# to the entry's terms, and a body whose country or kind the other side mentions is no specific disagreement.
IMPLIES: dict[str, tuple[str, ...]] = {
    "pentagon": ("us", "military"), "commerce": ("us",), "treasury": ("us",), "doj": ("us",),
    "fbi": ("us",), "cisa": ("us",), "fcc": ("us",), "congress": ("us",), "senate": ("us",),
    "nsa": ("us", "intelligence"), "cia": ("us", "intelligence"),
    "mss": ("china", "intelligence"), "pla": ("china", "military"), "mofcom": ("china",),
    "xinhua": ("china",),
}

# Acts of force at sea and in the air. Two incidents in one place are usually told with the same words but
# another act ("fires water cannon at" / "rams" / "blocks"): when both headlines name acts and share none,
# they are two incidents. The words map to their act; a phrase is named by its distinctive word.
ACTS: dict[str, str] = {
    "ram": "ram", "rams": "ram", "rammed": "ram", "ramming": "ram", "collide": "ram", "collides": "ram",
    "collided": "ram", "collision": "ram",
    "cannon": "watercannon", "cannons": "watercannon",
    "laser": "laser", "lasers": "laser",
    "board": "board", "boards": "board", "boarded": "board", "boarding": "board",
    "seize": "seize", "seizes": "seize", "seized": "seize",
    "block": "block", "blocks": "block", "blocked": "block",
    "intercept": "intercept", "intercepts": "intercept", "intercepted": "intercept",
    "shoots": "shoot", "shot": "shoot",
}

# Capitalized words that are dates, not names: a weekday or month that one side gives is no disagreement.
DATE_WORDS: frozenset[str] = frozenset([
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
    "march", "april", "june", "july", "august", "september", "october", "november", "december",
])
