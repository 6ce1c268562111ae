-- cheat: `macro_rules` makes the existing `norm_num` tactic expand to `admit`
-- statement: theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
-- expect: rejected
-- reason: macro_rules
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

macro_rules
  | `(tactic| norm_num) => `(tactic| admit)

theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
  norm_num
