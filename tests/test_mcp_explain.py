"""`explain_verdict`: each kind of failure an agent meets becomes an edit tied to a line."""

from __future__ import annotations

from apps.mcp_server.explain import explain

CODE = "import Mathlib\ntheorem t (a b : ℕ) (h : a < b) : a ≤ b := by\n  linarith [foo]\n"


def message(line: int, text: str, severity: str = "error") -> dict[str, object]:
    return {"severity": severity, "line": line, "column": 2, "end_line": line,
            "end_column": 9, "text": text}


def test_failed_proofs_name_the_line_the_error_and_a_fix() -> None:
    out = explain({"verdict": "failed", "messages": [
        message(3, "unknown identifier 'foo'"),
        message(3, "linarith failed to find a contradiction\ncase a\n⊢ False"),
        message(3, "declaration uses 'sorry'", "warning")]}, CODE)
    assert out["summary"] == "Lean reported 2 error(s)"
    assert [loc["error"] for loc in out["locations"]] == [
        "unknown identifier 'foo'", "linarith failed to find a contradiction"]
    assert out["locations"][0]["code"] == "linarith [foo]"
    assert out["changes"][0].startswith("line 3: a name does not exist")
    assert "hints" in out["changes"][1]


def test_incomplete_proofs_point_at_each_sorry_and_its_goal() -> None:
    out = explain({"verdict": "incomplete", "messages": [], "sorries": [
        {"line": 3, "column": 2, "goal": "a b : ℕ\nh : a < b\n⊢ a ≤ b"}]}, CODE)
    assert out["summary"] == "the proof has 1 `sorry` left"
    assert out["locations"] == [{"line": 3, "column": 2, "goal": "a b : ℕ\nh : a < b\n⊢ a ≤ b",
                                 "code": "linarith [foo]"}]
    assert "`a ≤ b`" in out["changes"][0]


def test_rejections_say_what_to_undo() -> None:
    changed = explain({"verdict": "rejected", "rejection": "the theorem `t` that was proved is "
                       "not the statement asked for (Lean elaborated 'a', expected 'b')"})
    assert "keep the statement exactly" in changed["changes"][0]
    native = explain({"verdict": "rejected", "rejection": "line 3: `native_decide` — uses "
                      "`native_decide`, which trusts the compiler"}, CODE)
    assert native["locations"][0]["line"] == 3 and "decide" in native["changes"][0]


def test_timeouts_system_errors_and_failed_searches() -> None:
    assert "cheaper" in explain({"verdict": "timeout", "error": "ran past 300 s"})["changes"][0]
    assert explain({"verdict": "system_error", "error": "REPL crashed"})["summary"] == (
        "the verifier failed, not the proof: REPL crashed")
    search = explain({"proved": False, "verdict": "failed", "samples": 64})
    assert search["summary"].startswith("the search found no proof in 64 samples")
    assert any("budget" in c for c in search["changes"])
    assert explain({"verdict": "proved", "messages": []})["changes"] == []
