-- cheat: a theorem with the asked short name, but in another namespace
-- statement: theorem Foo.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: it declares `Bar.mathd_algebra_10`
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Bar

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _

end Bar
