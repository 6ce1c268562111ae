-- cheat: `def` takes the theorem's name for a trivial `Prop`, then proves that
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: is not declared in the file
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

def mathd_algebra_10 : Prop := True

theorem mathd_algebra_10_holds : mathd_algebra_10 := by
  trivial
