-- cheat: a `macro` tactic that expands to `sorryAx`, so no `sorry` appears in the text
-- statement: theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) : a ^ 2 + b ^ 2 = 369 := by
-- expect: rejected
-- reason: macro
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

macro "finish_him" : tactic => `(tactic| exact sorryAx _ false)

theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) :
    a ^ 2 + b ^ 2 = 369 := by
  finish_him
