"""Commands and words a proof may not contain, found before Lean runs anything.

Lean is the judge of what a proof means, but some constructs make Lean's own answer
untrustworthy (they change the parser, skip the kernel, or run arbitrary code), so they are refused
outright. The scan runs on text with comments and strings blanked out; words match only as whole
Lean tokens, so `elab_as_elim` or `h_unsafe` are not mistaken for `elab` or `unsafe`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.lean.source import mask_comments_and_strings

# Identifier characters in Lean; a forbidden word must not touch one on either side.
_L = r"(?<![\w'.!?])"
_R = r"(?![\w'!?])"


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    reason: str


def _words(words: str, reason: str) -> Rule:
    alternatives = "|".join(re.escape(w) for w in words.split())
    return Rule(re.compile(_L + "(" + alternatives + ")" + _R), reason)


RULES: tuple[Rule, ...] = (
    _words("axiom", "declares a new axiom"),
    _words("unsafe", "uses `unsafe` code, which the kernel does not check"),
    _words("implemented_by extern csimp",
           "replaces a definition's code (`implemented_by`/`extern`/`csimp`)"),
    Rule(re.compile(r"#exit\b"), "`#exit` stops elaboration before the end of the file"),
    Rule(re.compile(r"#eval!?(?![\w])"), "`#eval` runs arbitrary code"),
    _words("run_cmd run_tac run_elab run_meta", "runs arbitrary meta-level code"),
    _words("macro macro_rules syntax elab elab_rules declare_syntax_cat notation notation3 "
           "infix infixl infixr prefix postfix binder_predicate",
           "defines new syntax, which can change what the statement means"),
    _words("initialize builtin_initialize", "runs code when the environment is loaded"),
    _words("delab app_delab app_unexpander command_elab term_elab meta",
           "installs meta-level code (elaborators or pretty-printers) that can fool the checker"),
    Rule(re.compile(r"(@\[|attribute\s*\[)[^\]]*\b(tactic|builtin_\w+)\b"),
         "installs a tactic elaborator"),
    Rule(re.compile(r"(?<![\w'])Lean(\.[\w.']*)?" + _R),
         "uses Lean's metaprogramming API, which proofs never need"),
    _words("import", "imports modules after the header"),
    _words("lcProof skipKernelTC", "uses a kernel escape hatch"),
    Rule(re.compile(r"set_option\s+(debug\.[\w.]+|trust|compiler\.[\w.]+|interpreter\.[\w.]+"
                    r"|bootstrap\.[\w.]+|pp\.[\w.]+)"),
         "sets an option that weakens checking or disturbs the statement check"),
    Rule(re.compile(r"__prover_"), "uses a name reserved for the verifier"),
)

NATIVE = _words("native_decide ofReduceBool reduceBool trustCompiler",
                "uses `native_decide`, which trusts the compiler instead of the kernel "
                "(allow it with PROVER_ALLOW_NATIVE_DECIDE=1)")


@dataclass(frozen=True)
class Violation:
    reason: str
    line: int  # 1-based, in the scanned text
    column: int
    word: str

    def describe(self, line_offset: int = 0) -> str:
        return f"line {self.line + line_offset}: `{self.word}` — {self.reason}"


def scan(text: str, *, allow_native_decide: bool = False) -> Violation | None:
    """The first forbidden construct in `text`, or None."""
    masked = mask_comments_and_strings(text)
    rules = RULES if allow_native_decide else (*RULES, NATIVE)
    best: Violation | None = None
    best_at = len(masked) + 1
    for rule in rules:
        m = rule.pattern.search(masked)
        if m is not None and m.start() < best_at:
            best_at = m.start()
            line = masked.count("\n", 0, m.start()) + 1
            column = m.start() - (masked.rfind("\n", 0, m.start()) + 1)
            best = Violation(rule.reason, line, column, m.group(0))
    return best
