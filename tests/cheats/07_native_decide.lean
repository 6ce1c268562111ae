-- cheat: closes a computation with `native_decide` (trusts the compiler)
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: native_decide
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  native_decide
