-- cheat: local `notation` turns `ℚ` into `ℕ` in the re-stated theorem, so the divisions truncate to 0
-- statement: theorem mathd_algebra_462 : ((1 : ℚ) / 2 + 1 / 3) * (1 / 2 - 1 / 3) = 5 / 36 := by
-- expect: rejected
-- reason: notation
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

local notation (priority := high) "ℚ" => ℕ

theorem mathd_algebra_462 : ((1 : ℚ) / 2 + 1 / 3) * (1 / 2 - 1 / 3) = 5 / 36 := by
  norm_num
