import ProverTactic

/-!
Where the messages of a replayed candidate land. The candidate `trace_state; rfl` logs the goal
when `prover?` replays it; that message, and the suggestion, must be at the `prover?` tactic
(line 14, column 2), not at the candidate's own offsets read as positions of this file.
tests/test_editor_lean.py checks the positions in `lake env lean` output.
-/

set_option prover.timeoutMs 5000

set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_trace.json" in
theorem replay_trace (n : Nat) : n + 0 = n := by
  prover?
