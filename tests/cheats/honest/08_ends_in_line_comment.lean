-- honest: ends in a line comment without a final line break, with `in` inside the proof, so the checker's own lines must follow it cleanly
-- statement: theorem mathd_numbertheory_3 : (∑ x in Finset.range 10, (x + 1) ^ 2) % 10 = 5 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

/-- A doc comment before the theorem. -/
theorem mathd_numbertheory_3 :
    (∑ x in Finset.range 10, (x + 1) ^ 2) % 10 = 5 := by
  norm_num [Finset.sum_range_succ]
-- the last line, a comment ending in in