-- cheat: the top-level theorem with the asked name is weaker; the right statement is proved under Foo, whose namespace is left open so an audit without `_root_` would see it instead
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: not the statement asked for
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _

namespace Foo

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  rw [abs_of_nonneg] <;> norm_num
