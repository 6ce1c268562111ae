-- cheat: `macro_rules` hijacks `#check` so the statement comparison sees a canned type, then proves a weaker statement
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: macro_rules
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

macro_rules
  | `(#check @$_x) => `(#check @abs_nonneg)

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _
