import ProverTactic

/-!
Offline tests of `prover?` and `prover_step?` (written for Lean v4.9.0-rc1). The service's
answers are recorded JSON files read through `file:` endpoints (paths relative to the working
directory), so no service is needed. From `lean_workspace/`, after `lake build ProverTactic`:

    lake env lean ProverTacticTest/Offline.lean

It prints nothing and exits 0 when every `#guard_msgs` matches. `pytest -m lean` runs it
(tests/test_editor_lean.py), and `Service.lean` against a mock HTTP service.
-/

set_option prover.timeoutMs 5000

-- Four candidates: two close the goal, one does not parse, one fails. The goal is closed with
-- the first that works (`rfl`) and both working ones are offered.
/--
info: Try these:
• rfl
• simp
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_two.json" in
theorem offline_two (n : Nat) : n + 0 = n := by
  prover?

-- None closes the goal: a clear error saying why each did not, and the goal is not admitted.
/--
error: prover?: none of the 3 candidates from the prover service closes the goal here:
• linarith [hp]: does not parse
• constructor: leaves 2 goals open
• exact sorry: uses sorry
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_none.json" in
theorem offline_none (p q : Prop) (hp : p) (hq : q) : p ∧ q := by
  prover?

-- Next-tactic suggestions: those that close the goal first, then those that make progress;
-- `skip` (no change) and `linarith` (does not parse) are left out. The proof goes on after.
/--
info: Try these:
• exact ⟨hp, hq⟩
• constructor
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_step.json" in
theorem offline_step (p q : Prop) (hp : p) (hq : q) : p ∧ q := by
  prover_step?
  exact ⟨hp, hq⟩

-- With a prefix, only candidates that start with it are offered.
/--
info: Try this: constructor
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_step.json" in
theorem offline_step_prefix (p q : Prop) (hp : p) (hq : q) : p ∧ q := by
  prover_step? "con"
  exact ⟨hp, hq⟩

-- An answer that is not JSON (a proxy's error page).
/--
error: prover?: the prover service's answer is not JSON: <html>Bad gateway</html>
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/not_json.txt" in
theorem offline_not_json : True := by
  prover?

-- No service listening (port 9 is the discard port, closed on ordinary machines).
/--
error: prover?: cannot reach the prover service at http://127.0.0.1:9/v1/complete (connection refused): is `prover serve` running?
-/
#guard_msgs in
set_option prover.endpoint "http://127.0.0.1:9" in
theorem offline_down : True := by
  prover?

-- A candidate that loops fails alone: `repeat` nests `evalTactic` until the recursion depth
-- runs out, a runtime exception that `try … catch` re-throws (it aborted `prover?` before);
-- the next candidate still runs and closes the goal.
/--
info: Try this: exact (Nat.add_comm b a).trans h
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_loop.json" in
theorem offline_loop (a b c : Nat) (h : a + b = c) : b + a = c := by
  prover?

-- Later lines of a multi-line suggestion are indented to the tactic's column counted in
-- characters: `·` is two bytes, and a byte count would put them one column too far right.
/--
info: Try this: constructor
    exact hp
    exact hq
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_indent.json" in
theorem offline_indent (p q : Prop) (hp : p) (hq : q) : p ∧ (p ∧ q) := by
  constructor
  · exact hp
  · prover?

-- A tactic that drops every goal without solving it, as a faulty tactic might.
open Lean Elab Tactic in
elab "forget_goals" : tactic => setGoals []

-- A candidate that leaves no goal but an unassigned metavariable in the proof is not a proof.
/--
info: Try this: exact ⟨0, rfl⟩
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_mvars.json" in
theorem offline_mvars : ∃ n : Nat, n = n := by
  prover?

-- Repeated candidates (also after trimming) are tried and offered once.
/--
info: Try these:
• rfl
• simp
-/
#guard_msgs in
set_option prover.endpoint "file:ProverTacticTest/fixtures/answer_repeats.json" in
theorem offline_repeats (n : Nat) : n + 0 = n := by
  prover?

-- The answer cache is keyed by endpoint (and API key) as well as the request: the same request
-- sent to another endpoint gets that endpoint's answer, not the cached one.
open ProverTactic in
#eval show IO Unit from do
  let request : ProverRequest := {
    header := "", declaration := "theorem cache_key : True := by\n  ", goals := #["⊢ True"],
    tacticPrefix := "", kind := "proof", numSamples := 1, timeoutS := 5, mathlibVersion := none }
  let mut sizes : Array Nat := #[]
  for endpoint in ["file:ProverTacticTest/fixtures/answer_two.json",
                   "file:ProverTacticTest/fixtures/answer_none.json",
                   "file:ProverTacticTest/fixtures/answer_two.json"] do
    let cfg : ProverConfig :=
      { endpoint := endpoint, numSamples := 1, timeoutMs := 5000, apiKey := none }
    match (← requestAnswer "cache_key" cfg request) with
    | .ok answer => sizes := sizes.push answer.candidates.size
    | .error msg => throw <| IO.userError msg
  unless sizes == #[4, 3, 4] do
    throw <| IO.userError s!"the answer cache mixed up endpoints: {sizes}"
