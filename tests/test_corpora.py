"""Every file of the shared corpora of real mail (../shared/corpora beside the clone, read
in place under their own licences: see that folder's README) through the entry points
`digest inbox` uses, against issue 20's goal figures. bench/corpora.py prints the same
figures, and the files behind each shortfall.

Where today's figure is short of the issue's goal, the test holds the figure reached
(named GOAL_NOT_MET below) so that it cannot slip back, and the note says so."""

from __future__ import annotations

import pytest
from corpora import Figures, corpora_root, inbox_judge, inbox_trim, measure

ROOT = corpora_root()
pytestmark = pytest.mark.skipif(ROOT is None, reason="../shared/corpora is not beside the clone (CI puts shared/ there)")


@pytest.fixture(scope="module")
def figures() -> Figures:
    assert ROOT is not None
    return measure(ROOT, inbox_judge, inbox_trim)


def test_soft_failures_are_not_taken_as_hard(figures: Figures) -> None:
    assert figures.soft >= 70
    assert figures.soft_as_hard <= 0.05 * figures.soft, figures.misses.get("hard/soft disagrees")


def test_hard_and_soft_agree_with_the_corpus(figures: Figures) -> None:
    # Most of the rest are full mailboxes, messages too large and expired retries that
    # flufl.bounce labels permanent and the corpora's README calls soft.
    assert figures.agreeing >= 0.90 * figures.labelled, figures.misses.get("hard/soft disagrees")


def test_bounces_are_recognised_and_their_recipient_found(figures: Figures) -> None:
    assert figures.bounces_seen >= 0.99 * figures.bounces, figures.misses.get("bounce not recognised")
    assert figures.recipient_found >= 0.95 * figures.with_recipient, figures.misses.get("recipient not found")


def test_auto_replies_are_never_questions_and_ordinary_mail_is_never_a_bounce(figures: Figures) -> None:
    assert figures.auto_as_question == 0, figures.misses.get("auto-reply not recognised")
    assert figures.auto >= 7 and figures.auto_seen >= 0.95 * figures.auto, figures.misses.get("auto-reply not recognised")
    assert figures.ordinary >= 50 and figures.ordinary_as_bounce == 0, figures.misses.get("ordinary mail taken as a bounce")


def test_replies_keep_the_readers_words_and_only_those(figures: Figures) -> None:
    assert figures.replies >= 46 and figures.emptied == 0
    assert figures.exact >= 0.80 * figures.replies, figures.misses.get("not exactly the reader's words")
    # GOAL_NOT_MET: all words kept, goal 98%, 45 of 46 reached: github's email_long_quote.txt is 700 KB of
    # ">" with words between, and a question is capped at MAX_QUESTION_CHARS, on purpose.
    assert figures.words_kept >= 45, figures.misses.get("reader's words lost")
