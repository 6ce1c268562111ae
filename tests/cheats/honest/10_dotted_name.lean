-- honest: the namespaced theorem declared at the top level by its dotted name
-- statement: theorem Foo.Bar.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem Foo.Bar.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  rw [abs_of_nonneg] <;> norm_num
