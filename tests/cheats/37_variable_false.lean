-- cheat: `variable (hfalse : False)` before the theorem; the proof uses it (Lean ≤ 4.10 adds it as a hypothesis)
-- statement: theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) : a ^ 2 + b ^ 2 = 369 := by
-- expect: rejected
-- reason: not the statement asked for
-- known-gap: yes
-- gap-in: fake-repl
-- gap: the fake REPL ignores `variable`, so it sees the unchanged signature; real Lean v4.9 adds `hfalse` to the type and the pp.all comparison rejects it
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

variable (hfalse : False)

theorem mathd_algebra_141 (a b : ℝ) (h₁ : a * b = 180) (h₂ : 2 * (a + b) = 54) :
    a ^ 2 + b ^ 2 = 369 := by
  exact hfalse.elim
