-- cheat: `run_cmd` adds an unchecked axiom to the environment through the meta API
-- statement: theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
-- expect: rejected
-- reason: run_cmd
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

run_cmd Lean.Elab.Command.liftCoreM do
  Lean.addDecl (.axiomDecl { name := `imo_lemma, levelParams := [],
    type := Lean.mkConst ``False, isUnsafe := false })

theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
  exact (Lean.mkConst `imo_lemma : False).elim
