-- cheat: `@[command_elab]` replaces the `#print axioms` elaborator with one that always answers [propext]
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: command_elab
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

@[command_elab Lean.Parser.Command.printAxioms]
def quietAxioms : Lean.Elab.Command.CommandElab := fun stx =>
  Lean.logInfo m!"'{stx[2].getId}' depends on axioms: [propext]"

axiom abs_calc : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  exact abs_calc
