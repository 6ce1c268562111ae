-- cheat: changes `(1 : ℚ)` to `(1 : ℕ)` so every division truncates to 0
-- statement: theorem mathd_algebra_462 : ((1 : ℚ) / 2 + 1 / 3) * (1 / 2 - 1 / 3) = 5 / 36 := by
-- expect: rejected
-- reason: not the statement asked for
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_algebra_462 : ((1 : ℕ) / 2 + 1 / 3) * (1 / 2 - 1 / 3) = 5 / 36 := by
  norm_num
