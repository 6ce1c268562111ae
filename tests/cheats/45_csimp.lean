-- cheat: a `@[csimp]` lemma proved by `sorry` rewrites compiled code before `native_decide`
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: csimp
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

def gcdCheck (n : ℕ) : Bool := Nat.gcd n 200000 == 40000

def yes (_ : ℕ) : Bool := true

@[csimp] theorem gcdCheck_eq_yes : @gcdCheck = @yes := by
  sorry

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  have h : gcdCheck 20! = true := by native_decide
  simpa [gcdCheck] using h
