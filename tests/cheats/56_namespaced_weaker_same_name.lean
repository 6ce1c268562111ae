-- cheat: the asked theorem is namespaced; the file declares that full name with a weaker statement
-- statement: theorem Foo.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: not the statement asked for
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Foo

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _

end Foo
