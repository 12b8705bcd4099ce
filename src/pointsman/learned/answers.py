"""Answer normalisers and features: the one code path the lab's cascade replay and the
gateway's answer-aware judges share, so what the lab measures is what the gateway does.

Two answers *agree* when their normalised forms are equal and not ``None``. Normalisers:

``choice``
    a multiple-choice letter (A–J): a lone letter, ``(C)``, ``C)``, ``Answer: C``, ``C.``
    at the start; ``None`` when no letter stands out.
``number``
    the final number of the answer (GSM8K's ``#### 42``, ``The answer is $1,234.50``),
    commas and a trailing ``.0`` dropped.
``json``
    a JSON document, re-serialised with sorted keys (so key order and spacing do not
    matter).
``text``
    lower case, whitespace collapsed, trailing punctuation dropped.
``auto``
    ``choice`` when the answer is a choice letter, else ``number`` when it ends in a
    number, else ``json`` when it parses as a JSON object or array, else ``text``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from typing import Final

NORMALISERS: Final = ("auto", "choice", "number", "json", "text")
_CHOICE = re.compile(r"^\W*(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s+is)?\s*"
                     r"[:\-]?\s*\(?([A-J])\b", re.IGNORECASE)
_LEAD = re.compile(r"^\W*\(?([A-J])(?:\)|\.|:)(?:\s|$)")
_LONE = re.compile(r"^\W*\(?([A-J])\)?\W*$")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_HEDGES: Final = ("not sure", "i think", "maybe", "perhaps", "probably", "might be",
                  "it seems", "unclear", "cannot be determined", "i'm not certain",
                  "it is possible", "likely", "could be", "either")
_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
_CONFIDENCE_LINE = re.compile(
    r"\n?[ \t]*[*_]*confidence[*_]*\s*[:=]\s*[*_]*\d{1,3}(?:\.\d+)?\s*%?[*_]*[ \t.]*\Z",
    re.IGNORECASE)


def choice(text: str) -> str | None:
    """The multiple-choice letter the answer gives, if one stands out."""
    head = text.strip()
    lone = _LONE.match(head)
    if lone:
        return lone.group(1).upper()
    match = _CHOICE.match(head) or _LEAD.match(head)
    return match.group(1).upper() if match else None


def number(text: str) -> str | None:
    """The last number in the answer (after GSM8K's ``####`` if present), canonical."""
    tail = text.rsplit("####", 1)[-1]
    found = _NUMBER.findall(tail)
    if not found:
        return None
    raw = found[-1].replace(",", "").replace("$", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return str(int(value)) if value == int(value) else repr(round(value, 6))


def json_value(text: str) -> str | None:
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def plain_text(text: str) -> str | None:
    collapsed = " ".join(text.lower().split()).rstrip(".!;, ")
    return collapsed or None


def auto(text: str) -> str | None:
    letter = choice(text)
    if letter is not None:
        return f"choice:{letter}"
    stripped = text.strip()
    if stripped[:1] in "{[":
        value = json_value(stripped)
        if value is not None:
            return f"json:{value}"
    if re.search(r"\d[\d,]*(?:\.\d+)?\W*$", stripped) or "####" in stripped:
        value = number(stripped)
        if value is not None:
            return f"number:{value}"
    found = plain_text(stripped)
    return None if found is None else f"text:{found}"


_BY_NAME: Final[dict[str, Callable[[str], str | None]]] = {
    "auto": auto, "choice": choice, "number": number, "json": json_value, "text": plain_text}


def normaliser(name: str) -> Callable[[str], str | None]:
    """The normaliser called ``name`` (one of :data:`NORMALISERS`)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown answer normaliser {name!r}; known: "
                         f"{', '.join(NORMALISERS)}") from None


def without_confidence(text: str) -> str:
    """The answer without a trailing ``Confidence: x`` line (the gateway's cascade may ask
    for one: it is no part of the answer to normalise, score or send)."""
    return _CONFIDENCE_LINE.sub("", text)


def agree(first: str | None, second: str | None) -> bool:
    """Two normalised answers agree: both known and equal."""
    return first is not None and first == second


def hedging(text: str) -> int:
    """How many hedging phrases the answer uses (a hint it is unsure)."""
    lower = text.lower()
    return sum(lower.count(h) for h in _HEDGES)


def arithmetic_ok(text: str) -> float:
    """Share of ``<<a*b=c>>`` annotations whose arithmetic checks (1.0 when there are none)."""
    found = _ANNOTATION.findall(text)
    if not found:
        return 1.0
    good = 0
    for expr, result in found:
        good += _checks(expr, result)
    return good / len(found)


def _checks(expr: str, result: str) -> int:
    try:
        value = _arith(ast.parse(expr.strip(), mode="eval").body)
        expected = float(result.replace(",", "").replace("$", "").strip())
    except (ArithmeticError, SyntaxError, ValueError, RecursionError):
        return 0
    return int(abs(value - expected) <= 1e-6 * max(1.0, abs(value)))


_OPS: Final[dict[type, Callable[[float, float], float]]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def _arith(node: ast.expr) -> float:
    """+ - * / over numbers only (no powers: an annotation cannot make us spin)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    raise ValueError("not plain arithmetic")
