"""The Lean REPL's wire format: requests we may send and the responses we accept.

The REPL dies on a malformed request (an empty request, a wrongly typed field, mixed shapes), so
requests are built only through the functions here, which check types before anything is written.
Responses are parsed leniently: REPL versions differ in which fields they include (`proofStatus`,
`usedConstants`, `endPos: null`), and an unknown extra field must never turn a verdict into an
error. See shared/docs/lean-repl-protocol.md for the protocol itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JsonObj = dict[str, Any]


class ProtocolError(ValueError):
    """The REPL printed something that is not a response of any known shape."""


# --------------------------------------------------------------------------- requests


def _nat(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def command(
    cmd: str,
    env: int | None = None,
    *,
    all_tactics: bool = False,
    root_goals: bool = False,
    infotree: str | None = None,
) -> JsonObj:
    """A `cmd` request; without `env` the text is a whole file (imports first)."""
    if not isinstance(cmd, str):
        raise ValueError("cmd must be a string")
    req: JsonObj = {"cmd": cmd}
    if env is not None:
        req["env"] = _nat("env", env)
    if all_tactics:
        req["allTactics"] = True
    if root_goals:
        req["rootGoals"] = True
    if infotree is not None:
        if infotree not in ("full", "tactics", "original", "substantive"):
            raise ValueError(f"unknown infotree mode {infotree!r}")
        req["infotree"] = infotree
    return req


def tactic(tactic_text: str, proof_state: int) -> JsonObj:
    if not isinstance(tactic_text, str):
        raise ValueError("tactic must be a string")
    return {"tactic": tactic_text, "proofState": _nat("proofState", proof_state)}


def encode(request: JsonObj) -> bytes:
    """One request as the REPL reads it: a single line of JSON, then exactly one blank line.

    `json.dumps` escapes line breaks and control characters (a raw one would end or corrupt the
    request); non-ASCII goes out raw because old Lean JSON parsers garble surrogate escapes.
    """
    return (json.dumps(request, ensure_ascii=False) + "\n\n").encode("utf-8")


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True)
class Message:
    severity: str
    pos: Pos
    end_pos: Pos | None
    data: str

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class Sorry:
    proof_state: int | None
    goal: str
    pos: Pos | None
    end_pos: Pos | None


@dataclass(frozen=True)
class TacticInfo:
    """One `allTactics` entry: a tactic and the goals before it."""

    tactic: str
    proof_state: int | None
    goals: str
    pos: Pos | None
    end_pos: Pos | None
    used_constants: tuple[str, ...]


@dataclass(frozen=True)
class CommandResponse:
    env: int
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    tactics: tuple[TacticInfo, ...] = ()
    infotree: Any = None

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.is_error)


@dataclass(frozen=True)
class TacticResponse:
    proof_state: int
    goals: tuple[str, ...]
    proof_status: str | None
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    traces: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplError:
    """`{"message": ...}`: the REPL refused the request but is still alive."""

    message: str


Response = CommandResponse | TacticResponse | ReplError


def _pos(obj: object) -> Pos | None:
    if not isinstance(obj, dict):
        return None
    line, column = obj.get("line"), obj.get("column")
    if not isinstance(line, int) or not isinstance(column, int):
        return None
    return Pos(line, column)


def _message(obj: object) -> Message:
    if not isinstance(obj, dict):
        raise ProtocolError(f"message is not an object: {obj!r}")
    data = obj.get("data")
    if not isinstance(data, str):
        raise ProtocolError(f"message without text: {obj!r}")
    return Message(
        severity=str(obj.get("severity", "info")),
        pos=_pos(obj.get("pos")) or Pos(0, 0),
        end_pos=_pos(obj.get("endPos")),
        data=data,
    )


def _sorry(obj: object) -> Sorry:
    if not isinstance(obj, dict):
        raise ProtocolError(f"sorry is not an object: {obj!r}")
    ps = obj.get("proofState")
    return Sorry(
        proof_state=ps if isinstance(ps, int) else None,
        goal=str(obj.get("goal", "")),
        pos=_pos(obj.get("pos")),
        end_pos=_pos(obj.get("endPos")),
    )


def _tactic_info(obj: object) -> TacticInfo:
    if not isinstance(obj, dict):
        raise ProtocolError(f"tactic entry is not an object: {obj!r}")
    goals = obj.get("goals", "")
    if isinstance(goals, list):  # some forks send a list
        goals = "\n\n".join(str(g) for g in goals) or "no goals"
    ps = obj.get("proofState")
    used = obj.get("usedConstants") or []
    return TacticInfo(
        tactic=str(obj.get("tactic", "")),
        proof_state=ps if isinstance(ps, int) else None,
        goals=str(goals),
        pos=_pos(obj.get("pos")),
        end_pos=_pos(obj.get("endPos")),
        used_constants=tuple(str(c) for c in used),
    )


def _list(obj: JsonObj, key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"field {key!r} is not a list")
    return value


def parse_response(obj: object) -> Response:
    """Classify and parse one decoded response object."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"response is not a JSON object: {str(obj)[:200]}")
    if "env" in obj and isinstance(obj["env"], int) and "proofState" not in obj:
        return CommandResponse(
            env=obj["env"],
            messages=tuple(_message(m) for m in _list(obj, "messages")),
            sorries=tuple(_sorry(s) for s in _list(obj, "sorries")),
            tactics=tuple(_tactic_info(t) for t in _list(obj, "tactics")),
            infotree=obj.get("infotree"),
        )
    if "proofState" in obj and isinstance(obj["proofState"], int):
        goals = obj.get("goals") or []
        if not isinstance(goals, list):
            raise ProtocolError("tactic response goals is not a list")
        status = obj.get("proofStatus")
        return TacticResponse(
            proof_state=obj["proofState"],
            goals=tuple(str(g) for g in goals),
            proof_status=status if isinstance(status, str) else None,
            messages=tuple(_message(m) for m in _list(obj, "messages")),
            sorries=tuple(_sorry(s) for s in _list(obj, "sorries")),
            traces=tuple(str(t) for t in _list(obj, "traces")),
        )
    if "message" in obj and isinstance(obj["message"], str):
        return ReplError(obj["message"])
    raise ProtocolError(f"unrecognised response shape: {json.dumps(obj)[:200]}")


def decode(text: str) -> Response:
    """Parse the text of one response (everything up to its terminating empty line)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"REPL printed non-JSON output: {text[:300]!r}") from exc
    return parse_response(obj)
