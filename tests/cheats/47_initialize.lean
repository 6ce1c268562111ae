-- cheat: `initialize` runs IO when the environment is loaded
-- statement: theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
-- expect: rejected
-- reason: initialize
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

initialize cheatFlag : IO.Ref Bool ← IO.mkRef true

theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
  norm_num
