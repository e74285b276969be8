"""The one table of who may move a subscriber where, on what evidence (core/policy.py),
and how far a report that came back by mail may act, by how it was tied to a reader."""

from __future__ import annotations

import pytest

from digest.core.policy import MOVES, STRONG, Evidence, State, Tie, allowed, attributed, move, sources


def test_every_kind_of_evidence_has_exactly_one_move() -> None:
    assert sorted(m.evidence for m in MOVES) == sorted(Evidence)


@pytest.mark.parametrize(("evidence", "state", "ok"), [
    (Evidence.LINK_CONFIRM, "pending", True),
    (Evidence.LINK_CONFIRM, "unsubscribed", False),     # a stale link never resubscribes
    (Evidence.HARD_BOUNCE, "confirmed", True),
    (Evidence.HARD_BOUNCE, "unsubscribed", False),      # a bounce never turns a choice into a failure
    (Evidence.COMPLAINT, "pending", True),
    (Evidence.ASKER_BOUNCE, "pending", False),          # a question's mail failing says nothing of a pending reader
    (Evidence.ASKER_BOUNCE, "confirmed", True),
])
def test_allowed(evidence: Evidence, state: str, ok: bool) -> None:
    assert allowed(evidence, state) is ok


def test_the_moves_lead_where_the_store_records_them() -> None:
    assert move(Evidence.COMPLAINT).target is State.UNSUBSCRIBED and move(Evidence.COMPLAINT).how == "complaint"
    assert move(Evidence.UNSUBSCRIBE_MAIL).how == "mail"
    assert move(Evidence.SOFT_BOUNCES).target is State.BOUNCED
    assert sources(Evidence.UNSUBSCRIBE_MAIL) == ("pending", "confirmed")


@pytest.mark.parametrize("tie", sorted(STRONG))
@pytest.mark.parametrize("verp", [True, False])
def test_evidence_an_outsider_cannot_make_acts_in_full(tie: Tie, verp: bool) -> None:
    for evidence in (Evidence.HARD_BOUNCE, Evidence.COMPLAINT, Evidence.UNSUBSCRIBE_MAIL):
        assert attributed(evidence, tie, verp=verp) is evidence


def test_with_verp_a_bare_address_counts_for_nothing() -> None:
    # not even one soft failure: they add up, and a forger can send one for every issue
    assert attributed(Evidence.HARD_BOUNCE, Tie.ADDRESS, verp=True) is None
    assert attributed(Evidence.SOFT_BOUNCES, Tie.ADDRESS, verp=True) is None
    assert attributed(Evidence.COMPLAINT, Tie.ADDRESS, verp=True) is None
    assert attributed(Evidence.UNSUBSCRIBE_MAIL, Tie.ADDRESS, verp=True) is None


def test_without_verp_the_address_is_the_best_evidence_there_is() -> None:
    assert attributed(Evidence.HARD_BOUNCE, Tie.ADDRESS, verp=False) is Evidence.HARD_BOUNCE
    assert attributed(Evidence.COMPLAINT, Tie.ADDRESS, verp=False) is Evidence.COMPLAINT


def test_evidence_that_never_comes_by_mail_cannot_be_claimed_by_a_report() -> None:
    with pytest.raises(ValueError, match="never comes by mail"):
        attributed(Evidence.LINK_CONFIRM, Tie.VERP, verp=True)
