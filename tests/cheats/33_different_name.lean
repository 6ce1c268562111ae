-- cheat: proves an easier statement under a different theorem name
-- statement: theorem mathd_numbertheory_33 (n : ℕ) (h₀ : n < 398) (h₁ : n * 7 % 398 = 1) : n = 57 := by
-- expect: rejected
-- reason: is not declared in the file
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_numbertheory_33' (n : ℕ) (h₀ : n < 398) (h₁ : n * 7 % 398 = 1) : n < 398 := by
  exact h₀
