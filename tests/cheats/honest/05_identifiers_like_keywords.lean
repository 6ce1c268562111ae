-- honest: a correct proof that must not be rejected
-- statement: theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) : a ^ 2 + b ^ 2 = 369 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) :
    a ^ 2 + b ^ 2 = 369 := by
  have h_unsafe : a + b = 27 := by linarith
  have hprefix : a ^ 2 + b ^ 2 = (a + b) ^ 2 - 2 * (a * b) := by ring
  have h_elab_as_elim : (a + b) ^ 2 = 729 := by rw [h_unsafe]; norm_num
  have h_axiom_free : a ^ 2 + b ^ 2 = 729 - 2 * 180 := by rw [hprefix, h_elab_as_elim, h₁]
  have hnotation' : (729 : ℝ) - 2 * 180 = 369 := by norm_num
  rw [h_axiom_free, hnotation']
