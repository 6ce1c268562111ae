-- cheat: proves a weaker statement and prints axiom lists and types of its own to pass for the audit
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: not the statement asked for
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _

theorem helper : (1 : ℝ) = 1 := by
  norm_num

#print axioms helper
#check @helper
#check @helper
