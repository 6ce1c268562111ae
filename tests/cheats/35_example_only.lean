-- cheat: proves the statement only as an `example`, declaring nothing
-- statement: theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
-- expect: rejected
-- reason: is not declared in the file
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

example : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
  norm_num
