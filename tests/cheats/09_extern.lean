-- cheat: `@[extern]` binds a definition to foreign code the kernel never sees
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: extern
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

@[extern "lean_nat_dec_eq"]
def fastGcdCheck (a b : ℕ) : Bool := Nat.gcd a b == 40000

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  have h : fastGcdCheck 20! 200000 = true := by native_decide
  simpa [fastGcdCheck] using h
