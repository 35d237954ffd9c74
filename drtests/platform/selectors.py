"""Kubernetes label selectors, translated completely and checked on the client.

A workload's ``spec.selector`` may use ``matchLabels``, ``matchExpressions`` or both; the
string form the API takes joins them (``app=hms,tier in (db,cache),!canary``). Reading
``matchLabels`` alone turns an expressions-only selector into ``""``, which selects every
pod of the namespace: a kill must never be sent with such a selector, so an empty or
match-all selector is refused here before anything is listed for deletion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from drtests.errors import SafetyError

_SET_TERM = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_KEY = r"[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?"
_SOME_VALUE = r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"
_VALUE = rf"({_SOME_VALUE})?"
#: every term the API server accepts, and nothing else
_VALID_TERM = re.compile(
    rf"^\s*(!?\s*{_KEY}|{_KEY}\s*(=|==|!=)\s*{_VALUE}"
    rf"|{_KEY}\s+(in|notin)\s*\(\s*{_SOME_VALUE}(\s*,\s*{_SOME_VALUE})*\s*\))\s*$"
)


def selector_string(selector: Any) -> str:
    """The label-selector string of a ``V1LabelSelector`` (or its dict form)."""
    if selector is None:
        return ""
    if isinstance(selector, Mapping):
        labels = selector.get("matchLabels") or selector.get("match_labels") or {}
        expressions = selector.get("matchExpressions") or selector.get("match_expressions") or []
    else:
        labels = selector.match_labels or {}
        expressions = selector.match_expressions or []
    terms = [f"{key}={value}" for key, value in sorted(labels.items())]
    for expression in expressions:
        terms.append(_expression_term(expression))
    return ",".join(terms)


def _expression_term(expression: Any) -> str:
    def field(name: str) -> Any:
        if isinstance(expression, Mapping):
            return expression.get(name)
        return getattr(expression, name, None)

    key, operator = str(field("key")), str(field("operator"))
    values = sorted(str(v) for v in (field("values") or []))
    if operator == "In":
        return f"{key} in ({','.join(values)})"
    if operator == "NotIn":
        return f"{key} notin ({','.join(values)})"
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    raise SafetyError(f"label selector operator {operator!r} on {key!r} is not understood")


def _terms(selector: str) -> Iterable[str]:
    """Split on the commas that are not inside a set's parentheses."""
    depth, start = 0, 0
    for index, char in enumerate(selector):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            yield selector[start:index]
            start = index + 1
    yield selector[start:]


def selector_matches(labels: Mapping[str, str] | None, selector: str) -> bool:
    """Equality- and set-based selectors (``a=b,c!=d,e,!f,g in (x,y),h notin (z)``),
    checked on the client as well: the result never depends on a server that ignored the
    selector."""
    labels = labels or {}
    for term in (t.strip() for t in _terms(selector)):
        if not term:
            continue
        if match := _SET_TERM.match(term):
            key, operator, raw = match.groups()
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if operator == "in" and labels.get(key) not in values:
                return False
            if operator == "notin" and key in labels and labels[key] in values:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=").strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _excludes_only(term: str) -> bool:
    """``!key``, ``key!=v`` and ``key notin (…)`` exclude; they never narrow a selection."""
    set_term = _SET_TERM.match(term)
    return term.startswith("!") or "!=" in term or bool(set_term and set_term[2] == "notin")


def require_narrow(selector: str, what: str) -> str:
    """Refuse a selector that is malformed (a typo would select nothing, silently) or
    selects everything: no term, or only terms that exclude."""
    terms = [t.strip() for t in _terms(selector) if t.strip()]
    bad = [t for t in terms if not _VALID_TERM.match(t)]
    if bad:
        raise SafetyError(f"{what}: label selector term {bad[0]!r} is not valid; refusing")
    narrowing = [t for t in terms if not _excludes_only(t)]
    if not narrowing:
        shown = selector or "(empty)"
        raise SafetyError(
            f"{what}: its label selector {shown} would select every pod of the namespace; "
            "refusing to act on it (give the workload a selector with matchLabels or an "
            "In/Exists expression)"
        )
    return selector
