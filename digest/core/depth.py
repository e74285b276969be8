"""How deep post HTML nests, bounded before nh3 sees it. Pure core: no network, no
database, no clock, no file writes.

nh3 (html5ever) takes time quadratic in the depth of the tree: 150,000 nested <div>s took
140 s, and a 10 MB feed would take tens of minutes. flatten_deep takes out, in one linear
pass, the start tags that would open deeper than MAX_DEPTH; their text stays.

The pass keeps a stack of the elements it believes open, and may believe too many (then it
flattens a little early) but must never believe too few: an HTML parser ignores many end
tags (`<div><object></div>` leaves the div open: the object is a scope boundary), so a count
that believed every end tag could be walked down while the parser's tree grew. So an end
tag closes the element on top of the stack; or, when only elements whose end tags HTML
implies (p, li, dd...) lie above its element, those and it, as the parser's "generate
implied end tags" does; else nothing. A start tag of p, li, dd, dt, option, td, th or tr
replaces one of its kind on top, which the parser closes at that point. Tag names are
read as the parser reads them: up to ASCII whitespace, "/" or ">", lower-cased in ASCII
only, and `<div/>` opens a div.
"""

from __future__ import annotations

import re

MAX_DEPTH = 100  # real posts nest a few dozen elements at most
_TAG = re.compile(r"<(/?)([A-Za-z][^\t\n\x0c\r />]*)[^>]*>")
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_VOID = frozenset({"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img", "input",
                   "keygen", "link", "meta", "param", "source", "track", "wbr"})
# Whose end tags HTML implies (the spec's "generate implied end tags"), and the table
# parts that </table>, </tbody>... close with them.
_IMPLIED = frozenset({"p", "li", "dd", "dt", "option", "optgroup", "rb", "rp", "rt", "rtc"})
_TABLE_PARTS = frozenset({"td", "th", "tr", "tbody", "thead", "tfoot", "caption", "colgroup"})
_CLOSED_WITH = {"table": _IMPLIED | _TABLE_PARTS, "tbody": _IMPLIED | {"tr", "td", "th"},
                "thead": _IMPLIED | {"tr", "td", "th"}, "tfoot": _IMPLIED | {"tr", "td", "th"},
                "tr": _IMPLIED | {"td", "th"}}
# The adoption agency runs for these end tags, and may keep the depth; and these end
# tags do not pop what they name: only a top of the same name closes them.
_ONLY_ON_TOP = frozenset({"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt",
                          "u", "body", "html", "form", "template"})
# A start tag of the key's kind closes one of these on top.
_REPLACES = {"p": {"p"}, "li": {"li"}, "dd": {"dd", "dt"}, "dt": {"dd", "dt"}, "option": {"option"},
             "td": {"td", "th"}, "th": {"td", "th"}, "tr": {"tr"}}


def flatten_deep(fragment: str, max_depth: int = MAX_DEPTH) -> str:
    """`fragment` without the start tags that would open deeper than `max_depth`."""
    if fragment.count("<") <= max_depth:
        return fragment
    # A tag is only a tag once a ">" ends it: scanning stops at the last one, so that a run
    # of "<a" with no ">" after it costs one step each, not a search to the end.
    end = fragment.rfind(">") + 1
    stack: list[str] = []
    kept: list[str] = []
    last = 0
    for match in _TAG.finditer(fragment, 0, end):
        name = match.group(2)
        name = name.lower() if name.isascii() else name.translate(_ASCII_LOWER)
        if name in _VOID:
            continue
        if match.group(1):
            _close(stack, name)
            continue
        if stack and stack[-1] in _REPLACES.get(name, ()):
            stack.pop()
        if len(stack) < max_depth:
            stack.append(name)
        else:
            kept.append(fragment[last:match.start()])
            last = match.end()
    if not kept:
        return fragment
    kept.append(fragment[last:])
    return "".join(kept)


def _close(stack: list[str], name: str) -> None:
    """What an end tag `name` closes, as far as the count can be sure."""
    if not stack:
        return
    if stack[-1] == name:
        stack.pop()
        return
    if name in _ONLY_ON_TOP:
        return
    through = _CLOSED_WITH.get(name, _IMPLIED)
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] == name:
            del stack[index:]
            return
        if stack[index] not in through:
            return
