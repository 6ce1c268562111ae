"""Fully qualified theorem names from Lean source, following `namespace`/`section`/`end` as Lean
does, because the audit must name a theorem by its full name (`#print axioms _root_.A.B.t`).

Lean's rules, modelled here on comment- and string-free text:

- `namespace A.B` opens one scope per component (`A`, then `B`); `section [S]` and
  `noncomputable section` open one scope that adds nothing to the namespace; `mutual` opens a block
  that its own `end` closes.
- `end` closes one scope, `end A.B` as many as the name has components. (A mismatched `end` is a
  Lean error, so such a file is never `proved`; the count is all that matters here.)
- `theorem t` in namespace `A.B` declares `A.B.t`; `theorem C.t` declares `A.B.C.t` (and is
  elaborated inside namespace `A.B.C`); `theorem _root_.t` declares `t` whatever the namespace.
- `private` and `protected` do not change the name an audit uses: Lean resolves `_root_.A.t` to a
  private `A.t` of the same file, and a private and a public declaration of one name cannot
  coexist.

Nothing here decides a verdict alone: a name found here is only ever looked up by Lean, and a
name Lean does not know makes the check fail or be rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prover.lean.source import mask_comments_and_strings

ROOT = "_root_."
_TOKEN = re.compile(
    r"(?<![\w'.!?«])(?P<kw>namespace|section|end|mutual|theorem|lemma)(?![\w'!?»])"
    r"(?:[ \t]+(?P<name>[^\s(:{\[⦃]+))?"
)


@dataclass(frozen=True)
class Declared:
    name: str  # fully qualified, without `_root_.`
    offset: int  # of the keyword, in the scanned text


@dataclass(frozen=True)
class Scan:
    declared: tuple[Declared, ...]
    namespace: str  # open at the end of the text ("" at the top level)


def qualify(namespace: str, name: str) -> str:
    """The full name `theorem name` declares inside `namespace`."""
    if name.startswith(ROOT):
        return name[len(ROOT):]
    return f"{namespace}.{name}" if namespace else name


def _clean(name: str | None) -> str:
    # `theorem t.{u}` stops the name at `{`, leaving the dot of the universe list behind.
    return (name or "").rstrip(".")


def scan(text: str, namespace: str = "") -> Scan:
    """The theorems `text` declares and the namespace left open after it, starting inside
    `namespace` (whose scopes an `end` in `text` may close)."""
    masked = mask_comments_and_strings(text)
    # One entry per scope: the namespace component it adds, or None (section, mutual).
    scopes: list[str | None] = [p for p in namespace.split(".") if p]
    declared: list[Declared] = []
    for m in _TOKEN.finditer(masked):
        kw, name = m.group("kw"), _clean(m.group("name"))
        if kw == "namespace" and name:
            scopes.extend(p for p in name.split(".") if p)
        elif kw in ("section", "mutual"):
            scopes.append(None)
        elif kw == "end":
            parts = len(name.split(".")) if name else 1
            del scopes[max(len(scopes) - parts, 0):]
        elif name:  # theorem / lemma
            current = ".".join(s for s in scopes if s is not None)
            declared.append(Declared(qualify(current, name), m.start()))
    return Scan(tuple(declared), ".".join(s for s in scopes if s is not None))


def declared_theorems(body: str, namespace: str = "") -> tuple[str, ...]:
    """Fully qualified names of the `theorem`/`lemma` declarations in a body, in order, the body
    starting inside `namespace`."""
    return tuple(d.name for d in scan(body, namespace).declared)
