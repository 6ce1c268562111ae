-- cheat: a weaker theorem whose name has a Greek omicron `ο` in place of the Latin `o` (a valid Lean identifier that looks the same)
-- statement: theorem mathd_numbertheory_33 (n : ℕ) (h₀ : n < 398) (h₁ : n * 7 % 398 = 1) : n = 57 := by
-- expect: rejected
-- reason: is not declared in the file
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_numbertheοry_33 (n : ℕ) (h₀ : n < 398) (h₁ : n * 7 % 398 = 1) : n < 398 := by
  exact h₀
