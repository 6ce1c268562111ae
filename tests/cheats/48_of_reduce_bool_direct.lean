-- cheat: applies `Lean.ofReduceBool` by hand instead of writing `native_decide`
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: Lean
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 :=
  of_decide_eq_true (Lean.ofReduceBool _ true rfl)
