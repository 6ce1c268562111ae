-- cheat: `macro_rules` rewrites `#print axioms` into a canned 'does not depend on any axioms' message, then uses an axiom
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: macro_rules
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

macro_rules
  | `(#print axioms $_x) => `(#print "'mathd_algebra_10' does not depend on any axioms")

axiom abs_calc : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  exact abs_calc
