"""Pins the content of the bundled Operations Manager — Trust & Safety track.

The file is parsed with stdlib tomllib directly, and also loaded once through the project's loader;
every floor is counted from the file, so these tests fail if the track shrinks or loses its shape.
"""

from __future__ import annotations

import difflib
import itertools
import re
import string
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from bot import bank

TRACK_FILE = Path(__file__).resolve().parents[2] / "question_bank" / "ops-manager-trust-safety.toml"
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# A table given inline in a question, e.g. `reports(id, created_at, category, priority)`.
SCHEMA = re.compile(r"\b[a-z_]+\([a-z_]+(?:, [a-z_]+)+\)")
SQL_CONSTRUCTS = ("JOIN", "GROUP BY", "OVER", "ROW_NUMBER", "MIN(", "MAX(", "COUNT", "CASE", "HAVING",
                  "NTILE", "DATE_TRUNC", "PERCENTILE", "LAG", "EXISTS")
# Similarity at or above which two questions are near-duplicates, on normalised text.
NEAR_DUPLICATE_JACCARD = 0.8
NEAR_DUPLICATE_RATIO = 0.8

PILLARS = {
    "Operational Architecture & Systems Design",
    "Data Fluency & Technical Acumen",
    "Cross-Functional Leadership",
    "Mission Alignment & Resilience",
}
CATEGORIES = {
    "Operational Strategy & Systems",
    "Data & Technical",
    "Behavioral & Leadership",
    "Operational Enablement & Scaling",
    "Analytics & Technical Proficiency",
    "Stakeholder Management & Communication",
}

# Every question the seed guide lists, verbatim, with the guide section (category name) it sits in.
GUIDE_QUESTIONS = [
    ("Operational Strategy & Systems", "How do you design a quality assurance (QA) framework for a subjective policy area like 'hate speech'?"),
    ("Operational Strategy & Systems", "We are launching a new feature that carries high abuse risk. Walk me through your operational readiness plan."),
    ("Operational Strategy & Systems", "How do you balance speed vs. accuracy in a safety review process?"),
    ("Operational Strategy & Systems", "Describe a time you had to redesign a broken process while the plane was still flying."),
    ("Data & Technical", "What metrics would you look at to determine if a vendor team is underperforming?"),
    ("Data & Technical", "How do you assess the 'signal strength' of a new classifier?"),
    ("Data & Technical", "Explain a complex data model you created to forecast operational volume."),
    ("Data & Technical", "If you have limited engineering resources, how do you prioritize which tooling bugs to fix first?"),
    ("Behavioral & Leadership", "Tell me about a time you disagreed with a Product Manager about a launch timeline due to safety concerns."),
    ("Behavioral & Leadership", "How do you keep your team motivated when reviewing disturbing or sensitive content?"),
    ("Behavioral & Leadership", "Describe a situation where you had to make a high-stakes decision with incomplete data."),
    ("Behavioral & Leadership", "How do you handle a team member who is operationally strong but struggles with cross-functional collaboration?"),
    ("Operational Enablement & Scaling", "Walk me through how you would design a routing system for a new type of sensitive content that requires specialized reviewer knowledge."),
    ("Operational Enablement & Scaling", "How do you determine when to outsource a workflow versus keeping it in-house?"),
    ("Operational Enablement & Scaling", "Describe a time you automated a manual process that resulted in significant efficiency gains."),
    ("Analytics & Technical Proficiency", "How would you measure the success of a new safety policy rollout?"),
    ("Analytics & Technical Proficiency", "If false positives spike by 20% overnight, how do you investigate the root cause?"),
    ("Analytics & Technical Proficiency", "Describe a complex dashboard you built. What data sources did you use and what decisions did it enable?"),
    ("Stakeholder Management & Communication", "Engineering says the tooling feature you need is de-prioritized for Q3. How do you handle this?"),
    ("Stakeholder Management & Communication", "A new policy is vague and causing reviewer confusion. How do you resolve this with the Policy team?"),
]

_PUNCTUATION = re.compile(rf"[{re.escape(string.punctuation)}‘’“”—–…]")


def normalise(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def jaccard(a: str, b: str) -> float:
    left, right = set(normalise(a).split()), set(normalise(b).split())
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def similarity(a: str, b: str) -> float:
    """Character-level similarity of the normalised texts, catching rewordings Jaccard misses."""
    return difflib.SequenceMatcher(None, normalise(a), normalise(b)).ratio()


def is_sql_exercise(question: dict) -> bool:
    return question["id"].startswith("sql-") or (
        question["kind"] == "technical" and re.search(r"\bSQL\b|\bquery\b", question["text"]) is not None)


@pytest.fixture(scope="module")
def track() -> dict:
    with TRACK_FILE.open("rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def questions(track: dict) -> list[dict]:
    return track["questions"]


@pytest.fixture(scope="module")
def pillar_names(track: dict) -> dict[str, str]:
    return {pillar["id"]: pillar["name"] for pillar in track["pillars"]}


@pytest.fixture(scope="module")
def category_names(track: dict) -> dict[str, str]:
    return {category["id"]: category["name"] for category in track["categories"]}


def test_the_track_id_matches_its_file_name(track: dict) -> None:
    assert track["track"]["id"] == TRACK_FILE.stem


def test_the_track_has_at_least_one_hundred_and_twenty_questions(questions: list[dict]) -> None:
    assert len(questions) >= 120, f"the track has only {len(questions)} questions; it needs at least 120"


def test_the_pillars_are_exactly_the_guides_four(pillar_names: dict[str, str]) -> None:
    assert set(pillar_names.values()) == PILLARS
    assert len(pillar_names) == 4


def test_the_categories_are_exactly_the_guides_six(category_names: dict[str, str]) -> None:
    assert set(category_names.values()) == CATEGORIES
    assert len(category_names) == 6


def test_every_question_references_known_categories_and_pillars(
    questions: list[dict], pillar_names: dict[str, str], category_names: dict[str, str],
) -> None:
    bad = [q["id"] for q in questions
           if q["category"] not in category_names or not q["pillars"]
           or any(p not in pillar_names for p in q["pillars"]) or len(set(q["pillars"])) != len(q["pillars"])]
    assert not bad, f"questions with an unknown, missing or repeated category/pillar: {bad}"


def test_every_pillar_has_at_least_twenty_questions(questions: list[dict], pillar_names: dict[str, str]) -> None:
    counts = Counter(p for q in questions for p in q["pillars"])
    thin = {pillar: counts[pillar] for pillar in pillar_names if counts[pillar] < 20}
    assert not thin, f"pillars with fewer than 20 questions: {thin}"


def test_every_category_has_at_least_twelve_questions(questions: list[dict], category_names: dict[str, str]) -> None:
    counts = Counter(q["category"] for q in questions)
    thin = {category: counts[category] for category in category_names if counts[category] < 12}
    assert not thin, f"categories with fewer than 12 questions: {thin}"


def test_every_difficulty_has_at_least_twenty_five_questions(questions: list[dict]) -> None:
    counts = Counter(q["difficulty"] for q in questions)
    bad_values = [q["id"] for q in questions if q["difficulty"] not in (1, 2, 3)]
    assert not bad_values, f"questions with a difficulty other than 1, 2 or 3: {bad_values}"
    thin = {level: counts[level] for level in (1, 2, 3) if counts[level] < 25}
    assert not thin, f"difficulties with fewer than 25 questions: {thin}"


def test_behavioural_questions_are_between_a_fifth_and_a_third_of_the_track(questions: list[dict]) -> None:
    kinds = [q["id"] for q in questions if q["kind"] not in ("behavioral", "situational", "technical")]
    assert not kinds, f"questions with an unknown kind: {kinds}"
    behavioural = sum(q["kind"] == "behavioral" for q in questions)
    share = behavioural / len(questions)
    assert 1 / 5 <= share <= 1 / 3, f"{behavioural} of {len(questions)} questions are behavioural ({share:.1%})"


def test_every_question_has_at_least_three_follow_ups(questions: list[dict]) -> None:
    short = {q["id"]: len(q.get("follow_ups", [])) for q in questions if len(q.get("follow_ups", [])) < 3}
    assert not short, f"questions with fewer than three follow-ups: {short}"


def test_no_question_repeats_a_follow_up(questions: list[dict]) -> None:
    repeats = [q["id"] for q in questions
               if len({normalise(f) for f in q["follow_ups"]}) != len(q["follow_ups"])]
    assert not repeats, f"questions with duplicate follow-ups: {repeats}"


def test_every_question_has_a_rubric_with_three_to_six_covers_and_one_or_two_pitfalls(questions: list[dict]) -> None:
    bad = {}
    for q in questions:
        rubric = q.get("rubric", {})
        covers, pitfalls = rubric.get("covers", []), rubric.get("pitfalls", [])
        if not 3 <= len(covers) <= 6 or not 1 <= len(pitfalls) <= 2:
            bad[q["id"]] = (len(covers), len(pitfalls))
    assert not bad, f"questions whose rubric has the wrong shape (covers, pitfalls): {bad}"


def test_every_category_has_at_least_eight_probes(track: dict) -> None:
    thin = {c["id"]: len(c.get("probes", [])) for c in track["categories"] if len(c.get("probes", [])) < 8}
    assert not thin, f"categories with fewer than eight generic probes: {thin}"


def test_every_question_the_guide_lists_is_present_verbatim_in_its_section(
    questions: list[dict], category_names: dict[str, str],
) -> None:
    by_text = {normalise(q["text"]): q for q in questions}
    missing = [text for _, text in GUIDE_QUESTIONS if normalise(text) not in by_text]
    assert not missing, f"guide questions missing from the track: {missing}"
    reworded = [by_text[normalise(text)]["id"] for _, text in GUIDE_QUESTIONS if by_text[normalise(text)]["text"] != text]
    assert not reworded, f"guide questions whose wording differs from the guide's: {reworded}"
    misplaced = [by_text[normalise(text)]["id"] for section, text in GUIDE_QUESTIONS
                 if category_names[by_text[normalise(text)]["category"]] != section]
    assert not misplaced, f"guide questions filed under the wrong category: {misplaced}"
    unmarked = [by_text[normalise(text)]["id"] for _, text in GUIDE_QUESTIONS
                if by_text[normalise(text)].get("from_guide") is not True]
    assert not unmarked, f"guide questions without from_guide = true: {unmarked}"


def test_only_the_guides_questions_are_marked_from_guide(questions: list[dict]) -> None:
    guide = {normalise(text) for _, text in GUIDE_QUESTIONS}
    wrong = [q["id"] for q in questions if q.get("from_guide") and normalise(q["text"]) not in guide]
    assert not wrong, f"questions marked from_guide that the guide does not list: {wrong}"


def test_question_ids_are_unique_slugs(questions: list[dict]) -> None:
    not_slugs = [q["id"] for q in questions if not SLUG.match(q["id"])]
    assert not not_slugs, f"ids that are not slugs: {not_slugs}"
    repeated = [qid for qid, n in Counter(q["id"] for q in questions).items() if n > 1]
    assert not repeated, f"ids used more than once: {repeated}"


def test_no_two_questions_have_the_same_or_nearly_the_same_text(questions: list[dict]) -> None:
    identical = [
        (a["id"], b["id"]) for a, b in itertools.combinations(questions, 2)
        if normalise(a["text"]) == normalise(b["text"])
    ]
    assert not identical, f"questions with identical normalised text: {identical}"
    scores = ((a["id"], b["id"], jaccard(a["text"], b["text"]), similarity(a["text"], b["text"]))
              for a, b in itertools.combinations(questions, 2))
    similar = [(a, b, round(overlap, 2), round(ratio, 2)) for a, b, overlap, ratio in scores
               if overlap >= NEAR_DUPLICATE_JACCARD or ratio >= NEAR_DUPLICATE_RATIO]
    assert not similar, (
        f"near-duplicate questions (token Jaccard >= {NEAR_DUPLICATE_JACCARD} or difflib ratio >= "
        f"{NEAR_DUPLICATE_RATIO}, on normalised text): {similar}")


def test_the_file_opens_with_a_header_naming_the_track_its_purpose_and_its_source(track: dict) -> None:
    lines = TRACK_FILE.read_text(encoding="utf-8").splitlines()
    header = "\n".join(line for line in itertools.takewhile(lambda line: line.startswith("#"), lines))
    assert track["track"]["title"] in header
    assert "Prepares for:" in header and "Source:" in header and "seed/000_a2b30186d0a14a66.txt" in header
    assert all(track["track"][field].strip() for field in ("title", "prepares_for", "source"))


def test_the_project_loader_accepts_the_track_and_keeps_every_question() -> None:
    loaded = bank.load_track(TRACK_FILE)
    assert len(loaded.questions) >= 120
    assert sum(q.from_guide for q in loaded.questions) == len(GUIDE_QUESTIONS)
    assert {c.id for c in loaded.categories} == {q.category for q in loaded.questions}


def test_every_rubric_point_is_a_real_statement_not_a_label(questions: list[dict]) -> None:
    thin = [(q["id"], point) for q in questions
            for point in q["rubric"]["covers"] + q["rubric"]["pitfalls"] if len(point.split()) < 4]
    assert not thin, f"rubric points too short to guide a rater (fewer than four words): {thin}"


def test_behavioural_rubrics_name_the_star_elements_a_strong_story_shows(questions: list[dict]) -> None:
    missing = {}
    for q in (q for q in questions if q["kind"] == "behavioral"):
        covers = [point.lower() for point in q["rubric"]["covers"]]
        gaps = [element for element, present in (
            ("situation", any(point.startswith("situation") for point in covers)),
            ("their own actions", any("their own" in point for point in covers)),
            ("result", any("result" in point for point in covers)),
            ("reflection", any("reflection" in point for point in covers)),
        ) if not present]
        if gaps:
            missing[q["id"]] = gaps
    assert not missing, f"behavioural questions whose rubric lacks STAR elements: {missing}"


def test_sql_exercises_give_their_schema_and_a_rubric_with_the_expected_query_approach(questions: list[dict]) -> None:
    exercises = [q for q in questions if is_sql_exercise(q)]
    assert len(exercises) >= 6, f"only {len(exercises)} SQL exercises; the track keeps at least six"
    no_schema = [q["id"] for q in exercises if not SCHEMA.search(q["text"])]
    assert not no_schema, f"SQL exercises that don't give the tables and columns: {no_schema}"
    no_approach = [q["id"] for q in exercises
                   if sum(any(c in point for c in SQL_CONSTRUCTS) for point in q["rubric"]["covers"]) < 2]
    assert not no_approach, f"SQL exercises whose rubric doesn't spell out the query approach: {no_approach}"


def test_no_follow_up_repeats_its_question_or_nearly_repeats_another_follow_up(questions: list[dict]) -> None:
    echoes = [q["id"] for q in questions if any(jaccard(q["text"], f) >= NEAR_DUPLICATE_JACCARD for f in q["follow_ups"])]
    assert not echoes, f"questions with a follow-up that restates the question: {echoes}"
    close = [(q["id"], a[:40], b[:40]) for q in questions for a, b in itertools.combinations(q["follow_ups"], 2)
             if jaccard(a, b) >= NEAR_DUPLICATE_JACCARD]
    assert not close, f"near-duplicate follow-ups within a question: {close}"


def test_probes_are_distinct_within_and_across_categories(track: dict) -> None:
    probes = [normalise(probe) for category in track["categories"] for probe in category["probes"]]
    repeated = [probe for probe, n in Counter(probes).items() if n > 1]
    assert not repeated, f"generic probes used more than once: {repeated}"
