-- cheat: `attribute [implemented_by]` attached after the fact
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: implemented_by
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

def gcdCheck (n : ℕ) : Bool := Nat.gcd n 200000 == 40000

def yes (_ : ℕ) : Bool := true

attribute [implemented_by yes] gcdCheck

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  have h : gcdCheck 20! = true := by native_decide
  simpa [gcdCheck] using h
