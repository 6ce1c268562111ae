"""`explain_verdict`: a verify or prove answer turned into what to change, for an agent.

A verdict says *that* a proof failed; an agent editing the proof needs *where* and *what next*.
The advice comes from the fields Lean and the verifier filled in (the first errors with their
lines, the open goals at each `sorry`, the policy rule a rejection names), matched against the
failure modes that prover models and agents run into most. It never guesses a proof: every
line points at something in the answer itself.
"""

from __future__ import annotations

import re
from typing import Any

# (pattern in a Lean error, advice). First match wins; the error text is quoted next to it.
_ERROR_HINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), advice) for p, advice in (
        (r"unknown (identifier|constant)",
         "a name does not exist in this environment's Mathlib (names change between versions): "
         "look it up with `#check`/`exact?` or use a tactic instead of the lemma"),
        (r"unsolved goals",
         "the proof ends with goals left: add tactics for the goals Lean printed after "
         "`unsolved goals`"),
        (r"(linarith|nlinarith|positivity|polyrith) failed",
         "the arithmetic tactic could not close the goal: give it the missing facts as hints "
         "(`nlinarith [sq_nonneg (a - b), h]`), or prove intermediate `have`s first"),
        (r"omega could not|omega.*failed",
         "`omega` only handles linear integer/natural arithmetic: rewrite non-linear parts "
         "first or use `nlinarith`/`norm_num`"),
        (r"simp made no progress|simp failed",
         "`simp` could not use its lemmas here: give it the right ones (`simp [foo]`) or use "
         "`norm_num`/`ring_nf`"),
        (r"type mismatch",
         "a term has a different type than expected: compare the two types Lean printed and "
         "coerce or rewrite (`push_cast`, `exact_mod_cast`, `by simpa using`)"),
        (r"(deterministic\) timeout|maximum recursion|heartbeats)",
         "a tactic ran out of steps: split the proof into smaller `have`s, or replace "
         "expensive `simp`/`nlinarith` calls by targeted lemmas"),
        (r"unexpected token|expected",
         "a syntax error: the code must be Lean 4 (not Lean 3: `begin ... end`, `assume`, "
         "`λ x,` are Lean 3); check the line Lean points at"),
        (r"failed to synthesize",
         "an instance is missing: the types involved may differ from what the lemma expects "
         "(ℕ vs ℝ); add a type ascription or a cast"),
        (r"motive is not type correct",
         "`rw` cannot rewrite under a dependent term: use `simp only [...]` or `conv`"),
        (r"did not find instance of the pattern|rewrite.*failed",
         "`rw` found no occurrence of the left-hand side: check the exact form of the goal "
         "(use `show` or `simp only` to bring it into shape first)"),
    ))

_REJECTION_HINTS: tuple[tuple[str, str], ...] = (
    ("is not the statement asked for",
     "the code proves a different theorem than the statement given: keep the statement exactly "
     "as asked (same binders, hypotheses and conclusion) and change only the proof"),
    ("non-standard axioms",
     "the proof depends on axioms beyond propext, Classical.choice and Quot.sound: remove "
     "whatever introduced them (`native_decide`, an `axiom`, a lemma that uses one)"),
    ("native_decide",
     "`native_decide` trusts the compiler: use `decide`, `norm_num` or `simp` instead"),
    ("declares a new axiom",
     "a new `axiom` would prove anything: state it as a `theorem` and prove it"),
    ("no named theorem",
     "the code declares no `theorem`/`lemma`: wrap the proof in a named theorem"),
    ("is not declared",
     "no theorem in the code has the statement's full name: a theorem inside `namespace X` is "
     "`X.name`, so declare it with the statement's name, or give the statement by its full "
     "name (`theorem X.name ...`)"),
    ("defines new syntax",
     "new notation or macros are not allowed in a checked proof: write terms out"),
    ("metaprogramming", "proofs may not use Lean's meta API: use ordinary tactics"),
    ("sets an option", "remove the `set_option` the rejection names"),
    ("imports modules after the header", "move every `import` to the top of the file"),
)

_MAX_ITEMS = 5


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _quote(code: str | None, line: int | None) -> str | None:
    if not code or not line:
        return None
    lines = code.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


def explain(answer: dict[str, Any], code: str | None = None) -> dict[str, Any]:
    """{"verdict", "summary", "changes": [...], "locations": [...]} for a verify object (verdict,
    messages, sorries, rejection, error) or a prove object (proved, verdict, samples)."""
    verdict = str(answer.get("verdict") or ("proved" if answer.get("proved") else "unknown"))
    changes: list[str] = []
    locations: list[dict[str, Any]] = []
    messages = [m for m in answer.get("messages") or [] if isinstance(m, dict)]
    errors = [m for m in messages if m.get("severity") == "error"]

    if "samples" in answer and "messages" not in answer and not answer.get("proved"):
        samples = answer.get("samples")
        summary = (f"the search found no proof in {samples} samples (the last sample's verdict: "
                   f"{verdict})")
        changes += [
            "raise `budget` (the paper's results use thousands of samples per problem)",
            "try `search: rmaxts` if this was sampling: it resumes from partial proofs",
            "split the theorem: prove helper lemmas first and state them in `header`",
        ]
        return {"verdict": verdict, "summary": summary, "changes": changes, "locations": []}

    if verdict == "proved":
        summary = "Lean accepted the proof: nothing to change"
    elif verdict == "failed":
        summary = (f"Lean reported {len(errors)} error(s)" if errors else
                   "Lean could not elaborate the file")
        if answer.get("error"):
            summary += f": {_first_line(str(answer['error']))}"
        seen: set[str] = set()
        for m in errors[:_MAX_ITEMS]:
            text = str(m.get("text") or "")
            hint = next((a for p, a in _ERROR_HINTS if p.search(text)), None)
            locations.append({"line": m.get("line"), "column": m.get("column"),
                              "error": _first_line(text), "code": _quote(code, m.get("line"))})
            if hint and hint not in seen:
                seen.add(hint)
                changes.append(f"line {m.get('line')}: {hint}")
        if not changes:
            changes.append("fix the first error Lean reports (later ones often follow from it)")
    elif verdict == "incomplete":
        sorries = [s for s in answer.get("sorries") or [] if isinstance(s, dict)]
        summary = (f"the proof has {len(sorries)} `sorry` left" if sorries else
                   "the proof depends on `sorry` (directly or through a lemma it uses)")
        for s in sorries[:_MAX_ITEMS]:
            goal = str(s.get("goal") or "").strip()
            locations.append({"line": s.get("line"), "column": s.get("column"), "goal": goal,
                              "code": _quote(code, s.get("line"))})
            changes.append(f"line {s.get('line')}: replace the `sorry` with a proof of the goal"
                           + (f" `{_first_line(goal.split('⊢')[-1])}`" if "⊢" in goal else "")
                           + " (the `fill_sorries` or `complete` tools can try)")
        if not sorries:
            changes.append("a lemma the theorem uses is unproved: prove it, or remove it")
    elif verdict == "rejected":
        reason = str(answer.get("rejection") or "")
        summary = f"the verifier refused the code: {reason}" if reason else \
            "the verifier refused the code"
        line = re.match(r"line (\d+):", reason)
        if line:
            locations.append({"line": int(line.group(1)), "rejection": reason,
                              "code": _quote(code, int(line.group(1)))})
        changes.append(next((a for key, a in _REJECTION_HINTS if key in reason),
                            "remove the construct the rejection names"))
    elif verdict == "timeout":
        summary = "the check ran out of time" + (
            f": {_first_line(str(answer['error']))}" if answer.get("error") else "")
        changes += ["make the proof cheaper: targeted lemmas instead of broad `simp`/`nlinarith`"
                    " calls, smaller steps", "or pass a larger `timeout` (up to the server's "
                    "PROVER_LEAN_TIMEOUT)"]
    elif verdict == "system_error":
        summary = ("the verifier failed, not the proof: "
                   + _first_line(str(answer.get("error") or "no detail")))
        changes.append("retry; if it persists, the server's Lean setup needs attention "
                       "(see its logs)")
    else:
        summary = f"unknown verdict {verdict!r}"
        changes.append("pass the whole answer of `verify` or `prove`")
    return {"verdict": verdict, "summary": summary, "changes": changes, "locations": locations}
