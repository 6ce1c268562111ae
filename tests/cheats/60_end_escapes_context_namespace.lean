-- cheat: the statement's context opens namespace Foo; the proof closes it with `end Foo` and declares a weaker top-level theorem of the same short name
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: `Foo.mathd_algebra_10` is not declared in the file
-- context: yes
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Foo

-- context ends
end Foo

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _
