-- cheat: changes the constant 398 to 1 in a hypothesis, making the hypotheses contradictory
-- statement: theorem mathd_numbertheory_33 (n : ℕ) (h₀ : n < 398) (h₁ : n * 7 % 398 = 1) : n = 57 := by
-- expect: rejected
-- reason: not the statement asked for
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_numbertheory_33 (n : ℕ) (h₀ : n < 1) (h₁ : n * 7 % 398 = 1) : n = 57 := by
  omega
