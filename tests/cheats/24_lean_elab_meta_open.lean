-- cheat: `open Lean Elab Term in` + a `term_elab` that elaborates any term to an admitted proof
-- statement: theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
-- expect: rejected
-- reason: Lean
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

open Lean Elab Term in
@[term_elab Lean.Parser.Term.byTactic]
def admitAll : TermElab := fun _ expectedType? => do
  let some ty := expectedType? | throwError "no type"
  mkSorry ty false

theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
  simp
