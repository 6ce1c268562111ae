-- cheat: a failing proof followed by `#exit` to stop elaboration
-- statement: theorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) (h₂ : x + y + x * y = 80) : x = 26 := by
-- expect: rejected
-- reason: #exit
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) (h₂ : x + y + x * y = 80) :
    x = 26 := by
  nlinarith [h₀, h₁, h₂]

#exit

theorem never_checked : False := by
  simp
