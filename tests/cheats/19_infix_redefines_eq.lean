-- cheat: local `infix` redefines ` = ` on ℝ as `True` in the re-stated theorem
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: infix
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

local infix:50 (priority := high) " = " => fun (_ _ : ℝ) => True

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  trivial
