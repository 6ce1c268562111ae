-- cheat: `@[implemented_by]` swaps a checker's code for `true`, then `native_decide` evaluates the swapped code
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: implemented_by
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

def alwaysTrue (_ : ℕ) : Bool := true

@[implemented_by alwaysTrue]
def gcdIs40000 (n : ℕ) : Bool := Nat.gcd n 200000 == 40000

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  have h : gcdIs40000 20! = true := by native_decide
  simpa [gcdIs40000] using h
