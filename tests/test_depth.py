"""core/depth.py: post HTML nested past MAX_DEPTH is flattened before nh3, however the
nesting is disguised, and ordinary HTML is left as it is. The depth is measured on the tree
html5ever itself builds (nh3 with every tag kept), not on our own count."""

from __future__ import annotations

import re

import nh3
import pytest

from digest.core.depth import MAX_DEPTH, flatten_deep

N = 1000
KEEP_ALL = set(nh3.ALLOWED_TAGS) | {"object", "option", "optgroup", "select", "marquee", "applet", "form", "button",
                                    "template"}


def parsed_depth(html: str) -> int:
    """How deep html5ever nests `html`'s elements (its own serialisation, every tag kept)."""
    deepest = level = 0
    for closing, name in re.findall(r"<(/?)([a-z0-9]+)[^>]*>", nh3.clean(html, tags=KEEP_ALL, clean_content_tags=set())):
        if name in ("br", "img", "hr", "col", "wbr", "input"):
            continue
        level += -1 if closing else 1
        deepest = max(deepest, level)
    return deepest


ATTACKS = {
    "plain": "<div>" * N,
    "scope boundary eats the end tag": "<div><object></div></object>" * N,
    "end tags of another element": "<blockquote></i>" * N,
    "self-closing slash on a div": "<div/>" * N,
    "a < inside the tag": "<div <>" * N,
    "Kelvin sign lower-cases to k": "<\u212ax></kx>" * N,
    "no-break space in the name": "<div\u00a0x></div\u00a0y>" * N,
    "dd and li never close each other": "<dd><li>" * N,
    "option through a b": "<option><b>" * N,
    "p through an object": "<p><object><p>" * N,
    "tables in cells": "<table><td><div>" * N,
    "marquee boundary": "<span><marquee></span></marquee>" * N,
    "template boundary": "<div><template></div></template>" * N,
    "formatting elements left open": "".join(f"<div><b id={i}></div>" for i in range(N)) + "text",
    "adoption agency": "<a href=x><div></a>" * N,
}


@pytest.mark.parametrize("html", ATTACKS.values(), ids=ATTACKS.keys())
def test_disguised_nesting_is_bounded(html: str) -> None:
    assert parsed_depth(html) > 2 * MAX_DEPTH or html.startswith(("<\u212a", "<div\u00a0", "<div><b")), \
        "the case does nest deep without flattening"
    flat = flatten_deep(html)
    assert parsed_depth(flat) <= 2 * MAX_DEPTH


@pytest.mark.parametrize("html", [
    "<ul><li>a<li>b</ul>" * 1000,
    "<div><p>x</div>" * 1000,
    "<table><tr><td>a<td>b</table>" * 500,
    "<p>a" * 2000,
    "<dl><dt>a<dd>b<dt>c<dd>d</dl>" * 500,
    "<div>" * MAX_DEPTH + "deep but fine" + "</div>" * MAX_DEPTH,
    "<o:p>Word</o:p><DIV>Upper</div><br/><img src=x>" * 1000,
])
def test_ordinary_html_is_left_as_it_is(html: str) -> None:
    assert flatten_deep(html) == html


def test_the_text_stays_when_the_tags_go() -> None:
    flat = flatten_deep("<div>" * 1000 + "deep words" + "</div>" * 1000)
    assert "deep words" in flat and flat.count("<div>") == MAX_DEPTH


def test_a_run_of_unfinished_tags_costs_one_step_each() -> None:
    html = "<div>" * 200 + "<a" * 200_000  # no ">" after the last tag: a quadratic regex would take minutes
    assert flatten_deep(html).count("<div>") == MAX_DEPTH
