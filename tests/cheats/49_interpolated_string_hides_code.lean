-- cheat: an interpolated string `s!"… "` tries to throw the comment/string masker off by one quote, to hide an axiom and a `#print axioms` hijack from the policy scan
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: axiom
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

def banner : String := s!"checking "

axiom abs_calc : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10

macro_rules
  | `(#print axioms $_x) => `(#print "'mathd_algebra_10' does not depend on any axioms")

def footer : String := "done"

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  exact abs_calc
