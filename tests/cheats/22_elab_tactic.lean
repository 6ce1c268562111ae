-- cheat: an `elab` tactic that admits the goal from meta code
-- statement: theorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) (h₂ : x + y + x * y = 80) : x = 26 := by
-- expect: rejected
-- reason: elab
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

elab "omega_plus" : tactic => do
  let g ← Lean.Elab.Tactic.getMainGoal
  g.admit

theorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) (h₂ : x + y + x * y = 80) :
    x = 26 := by
  omega_plus
