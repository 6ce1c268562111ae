"""Reading Lean source text without Lean: comments, header/body split, statements, names.

Lexing is deliberately shallow; nothing here decides a verdict on its own except the policy scan,
which only ever rejects. Splitting off the header matters for speed: a worker imports and
elaborates `import Mathlib ... open ...` once and checks every later proof on that environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


def mask_comments_and_strings(text: str) -> str:
    """`text` with comments and string literals blanked out, keeping lengths and line breaks.

    Handles nested `/- -/` blocks, `--` line comments and `"..."` strings with escapes, so a
    forbidden word inside a comment or string neither triggers nor hides anything.
    """
    out = list(text)
    i, n = 0, len(text)

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        ch = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif ch == '"' and i > 0 and text[i - 1] == "'" and text.startswith("'", i + 1):
            i += 2  # the character literal '"'
        elif ch == '"' and i > 0 and text[i - 1] == "r":
            j = text.find('"', i + 1)  # raw string: no escapes
            j = n if j < 0 else j
            blank(i + 1, j)
            i = j + 1
        elif ch == '"' and i > 0 and text[i - 1] == "#" and text[i - 2 : i] == "r#":
            j = text.find('"#', i + 1)
            j = n if j < 0 else j
            blank(i + 1, j)
            i = j + 2
        elif ch == '"':
            # In an interpolated string (s!"…{e}…") the braces hold code: scan it, mask the rest.
            interpolated = i > 0 and text[i - 1] == "!"
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    blank(j, j + 2)
                    j += 2
                elif interpolated and text[j] == "{":
                    depth, j = 1, j + 1
                    while j < n and depth:
                        depth += {"{": 1, "}": -1}.get(text[j], 0)
                        j += 1
                else:
                    blank(j, j + 1)
                    j += 1
            i = j + 1  # the quotes stay so tokens remain separated
        else:
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class HeaderKey:
    """What identifies a cached environment: the imports, then the rest of the header."""

    imports: tuple[str, ...]
    rest: str  # comment-free, whitespace-normalised

    @property
    def imports_only(self) -> HeaderKey:
        return HeaderKey(self.imports, "")


@dataclass(frozen=True)
class SplitSource:
    imports: tuple[str, ...]
    header_rest: str  # original text of the non-import header commands
    header_line_offset: int  # lines of the file before the header_rest's first line
    body: str  # original text after the header
    body_line_offset: int  # lines of the file before the body's first line

    @cached_property
    def key(self) -> HeaderKey:
        rest = mask_comments_and_strings(self.header_rest)
        norm = "\n".join(" ".join(line.split()) for line in rest.splitlines() if line.strip())
        return HeaderKey(self.imports, norm)


_HEADER_CMD = re.compile(r"^(open|set_option|universe|noncomputable\s+section)\b")
_ENDS_WITH_IN = re.compile(r"\bin\s*$")


def split_source(code: str) -> SplitSource:
    """Split a Lean file into imports, the header commands after them, and the body.

    The header ends at the first line that is not `open`, `set_option` or `universe` (or their
    indented continuation); `open ... in` and `set_option ... in` belong to the declaration that
    follows them, so they end the header too.
    """
    lines = code.splitlines(keepends=True)
    masked = mask_comments_and_strings(code).splitlines()
    imports: list[str] = []
    i = 0
    while i < len(lines):
        m = masked[i].strip()
        if not m:
            i += 1
            continue
        if m.startswith("import "):
            imports.extend(m.split()[1:])
            i += 1
            continue
        break
    header_start = i
    in_header_cmd = False
    while i < len(lines):
        raw_masked = masked[i]
        m = raw_masked.strip()
        if not m:
            i += 1
            continue
        indented = raw_masked[:1].isspace()
        if indented and in_header_cmd:
            i += 1
            continue
        if not indented and _HEADER_CMD.match(m) and not _ENDS_WITH_IN.search(m):
            in_header_cmd = True
            i += 1
            continue
        break
    # Blank and comment lines right before the body stay with the body (doc comments).
    j = i
    while j > header_start and not masked[j - 1].strip():
        j -= 1
    return SplitSource(
        imports=tuple(imports),
        header_rest="".join(lines[header_start:j]),
        header_line_offset=header_start,
        body="".join(lines[j:]),
        body_line_offset=j,
    )


@dataclass(frozen=True)
class Statement:
    """A theorem to be proved, as in the datasets' `formal_statement`."""

    name: str
    signature: str  # binders and type, without `theorem NAME` and without `:= by`

    def declaration(self, name: str, proof: str = "sorry") -> str:
        return f"theorem {name} {self.signature} := {proof}"


_DECL = re.compile(
    r"(?:^|\s)(theorem|lemma)\s+(?P<name>[^\s(:{\[⦃]+)", re.MULTILINE
)
_TRAILING_ASSIGN = re.compile(r":=\s*(by\s*)?$")


class StatementError(ValueError):
    pass


_BINDING = re.compile(r"(?<![\w'.!?])(?:let|letI|have|haveI)(?![\w'!?])|:=|[(\[{⟨⦃)\]}⟩⦄]")


def _proof_assign(masked: str) -> bool:
    """Whether a `:=` of a signature starts a proof: one at bracket depth 0 that no `let` or
    `have` of the type binds (`: let ⟨a, b⟩ := ans; a = b`); those inside brackets are named
    arguments, defaults and structure fields."""
    depth = bindings = 0
    for m in _BINDING.finditer(masked):
        token = m.group(0)
        if token in "([{⟨⦃":
            depth += 1
        elif token in ")]}⟩⦄":
            depth = max(depth - 1, 0)
        elif depth == 0 and token != ":=":
            bindings += 1
        elif depth == 0:
            if bindings == 0:
                return True
            bindings -= 1
    return False


def parse_statement(text: str) -> Statement:
    masked = mask_comments_and_strings(text)
    match = _DECL.search(masked)
    if match is None:
        raise StatementError(
            "the statement must be a `theorem NAME ... : TYPE` declaration "
            f"(got {text.strip()[:80]!r})"
        )
    sig_masked = masked[match.end():].rstrip()
    trailing = _TRAILING_ASSIGN.search(sig_masked)
    end = trailing.start() if trailing else len(sig_masked)
    if _proof_assign(sig_masked[:end]):
        raise StatementError("the statement must not contain a proof (found `:=` before its end)")
    signature = text[match.end():match.end() + end].strip()
    if not signature:
        raise StatementError("the statement has no type")
    return Statement(name=match.group("name"), signature=signature)


class ContextError(ValueError):
    """The file does not begin with the statement's context."""


def split_with_context(code: str, context: str) -> SplitSource:
    """Split a file that begins with `context`, the trusted text before its theorem (a LeanDojo
    theorem's file up to the declaration): the whole context becomes the header, so the statement
    can be elaborated right after it, where it means what it meant in its own file.

    Raises ContextError when `code` does not begin with `context`.
    """
    if context and not context.endswith("\n"):
        context += "\n"
    if not code.startswith(context):
        raise ContextError(
            "the file does not begin with the statement's context (the text before the theorem "
            "it was given with); keep that text unchanged and add only the proof after it"
        )
    head = split_source(context)
    if not mask_comments_and_strings(head.body).strip():
        return split_source(code)  # a plain header (imports, `open`s): split as always
    rest_start = len(context) - len(head.header_rest) - len(head.body)
    cut = _declaration_prefix_start(context)
    return SplitSource(
        imports=head.imports,
        header_rest=context[rest_start:cut],
        header_line_offset=head.header_line_offset,
        body=code[cut:],
        body_line_offset=context.count("\n", 0, cut),
    )


_PREFIX_LINE = re.compile(
    r"(@\[.*\]|((private|protected|noncomputable|partial|unsafe|nonrec)\s*)+"
    r"|(open|set_option)\s.*\sin)\s*$"
)


def _declaration_prefix_start(context: str) -> int:
    """Where the declaration that follows `context` begins inside it: a trailing doc comment,
    attribute, modifier or `open ... in` line belongs to that declaration, so it cannot end a
    header command of its own (Lean would report an unexpected end of input)."""
    lines = context.splitlines(keepends=True)
    masked = mask_comments_and_strings(context).splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    i = len(lines)
    cut = i
    while i > 0:
        m = masked[i - 1]
        if not m.strip():
            if "/--" in lines[i - 1]:
                cut = i - 1  # the doc comment's first line (masked lines after it are its own)
            i -= 1
        elif not m[:1].isspace() and _PREFIX_LINE.match(m.strip()):
            i -= 1
            cut = i
        else:
            break
    return starts[cut]
