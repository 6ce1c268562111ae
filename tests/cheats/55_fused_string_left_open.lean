-- cheat: calls `sorryAx` and leaves a string literal open to swallow the audit queries
-- statement: theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
-- expect: rejected
-- reason: unterminated comment or string
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
  exact sorryAx _ false

#check "unterminated
