"""Generated answers judged for mathematical equivalence by a maintained checker (issue 36).

A generation task's YAML declares how its answers are judged (a study key, popped before lm-eval
sees the config)::

    answer_check: {checker: math_verify, gold_field: answer, gold_after: "####"}

and this module's registry holds the checkers (``@checker``), as lm-eval's task ``utils.py`` hold
``process_results``. Why not lm-eval's own regex filters + ``exact_match``: they compare strings, so
``\\boxed{5.00}`` against a gold ``5`` scores wrong under both filters, and the "last number" rule
credits ``\\boxed{6W_0 + 16}`` as 16 and reads "3" from "the 3rd turn" written after a correct
``\\boxed{10}``. ``math-verify`` (Hugging Face's maintained checker, also what the MATH evaluation
uses) parses both sides to SymPy and compares them as numbers/expressions.

Two readings per answer, as before:

* ``strict``: the last ``\\boxed{...}`` only (the instruction asks for it); no box, no answer;
* ``flexible``: the *final answer* as math-verify reads it — the box first, then an "answer is"
  phrase, then the last expression — never any number written after a boxed answer.

lm-eval's regex scores are kept beside these for one release (``correct_string``,
``correct_flexible_string``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

CHECKERS: dict[str, Callable[[str, str], "Checked"]] = {}


@dataclass(frozen=True)
class Checked:
    correct: float            # strict: 1.0 / 0.0
    correct_flexible: float
    extracted_strict: str     # what was read ("" when nothing was)
    extracted_flexible: str


def checker(name: str):
    """Register ``fn(response, gold) -> Checked`` under ``name`` (the YAML's ``answer_check.checker``)."""
    def deco(fn):
        if name in CHECKERS:
            raise ValueError(f"answer checker {name!r} registered twice")
        CHECKERS[name] = fn
        return fn
    return deco


def version() -> str:
    """The checker library's version (recorded with every score)."""
    from importlib.metadata import version as v

    return f"math-verify=={v('math-verify')}"


def gold_of(doc: dict, spec: dict) -> str:
    """The gold answer of an item under a task's ``answer_check`` (``gold_after``: the text after
    that marker, as GSM8K's ``#### 72``)."""
    gold = str(doc[spec.get("gold_field", "answer")])
    if spec.get("gold_after"):
        gold = gold.split(spec["gold_after"])[-1]
    return gold.strip()


def _first_text(parsed) -> str:
    """math-verify returns [sympy object, the text it read]; '' when it read nothing."""
    return str(parsed[-1]) if parsed else ""


@checker("math_verify")
def math_verify(response: str, gold: str) -> Checked:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # the gold answer read as a boxed LaTeX answer (MATH's "3\\sqrt{13}", GSM8K's "1,200"), else as text
    g = parse(f"\\boxed{{{gold}}}", extraction_config=[LatexExtractionConfig(boxed_match_priority=0)])
    if not g:
        g = parse(gold, extraction_config=[LatexExtractionConfig(), ExprExtractionConfig()])
    if not g:
        raise ValueError(f"math-verify cannot read the gold answer {gold!r}")
    # the last box is the answer: math-verify reads several boxes in one sentence as a set
    # ("\\boxed{12}? No: \\boxed{18}" -> {12, 18}), so it is given the text from the last box on
    last = response.rfind("\\boxed")
    tail = response[last:] if last >= 0 else response
    strict = parse(tail, extraction_config=[LatexExtractionConfig(boxed_match_priority=0,
                                                                   try_extract_without_anchor=False)]) if last >= 0 else []
    flexible = parse(tail)   # default: boxed first, then "answer is ...", then the last expression
    return Checked(float(bool(strict) and verify(g, strict)), float(bool(flexible) and verify(g, flexible)),
                   _first_text(strict), _first_text(flexible))


def check(spec: dict, response: str, doc: dict) -> Checked:
    """Judge one response under a task's ``answer_check`` spec."""
    name = spec.get("checker")
    if name not in CHECKERS:
        raise ValueError(f"unknown answer checker {name!r}; registered: {sorted(CHECKERS)}")
    return CHECKERS[name](response or "", gold_of(doc, spec))
