-- cheat: `open Finset in` in front of a re-stated theorem whose sum range is changed
-- statement: theorem mathd_numbertheory_3 : (∑ x in Finset.range 10, (x + 1) ^ 2) % 10 = 5 := by
-- expect: rejected
-- reason: not the statement asked for
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

open Finset in
theorem mathd_numbertheory_3 : (∑ x in range 1, (x + 1) ^ 2) % 10 = 1 := by
  norm_num [Finset.sum_range_one]
