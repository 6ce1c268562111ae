-- honest: a correct proof that must not be rejected
-- statement: theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) : a ^ 2 + b ^ 2 = 369 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

lemma sum_of_sides (a b : ℝ) (h₂ : 2 * (a + b) = 54) : a + b = 27 := by
  linarith

theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) :
    a ^ 2 + b ^ 2 = 369 := by
  have hs := sum_of_sides a b h₂
  have hsq : a ^ 2 + b ^ 2 = (a + b) ^ 2 - 2 * (a * b) := by ring
  rw [hsq, hs, h₁]
  norm_num
