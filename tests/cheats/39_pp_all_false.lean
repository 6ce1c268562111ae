-- cheat: `set_option pp.all false` so the statement print hides implicit differences
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: pp.all
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

set_option pp.all false
set_option pp.explicit false

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  rw [abs_of_nonneg] <;> norm_num
