-- cheat: `#eval` runs IO at check time (reads files, could talk to the network)
-- statement: theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
-- expect: rejected
-- reason: #eval
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

#eval IO.Process.run { cmd := "cat", args := #["/etc/passwd"] }

theorem mathd_numbertheory_299 : 1 * 3 * 5 * 7 * 9 * 11 * 13 % 10 = 5 := by
  norm_num
