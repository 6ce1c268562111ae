-- cheat: `set_option pp.notation false in` around a changed statement
-- statement: theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
-- expect: rejected
-- reason: pp.notation
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

set_option pp.notation false in
theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 ∨ False := by
  left
  norm_num
