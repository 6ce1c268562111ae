-- honest: the asked theorem is namespaced (given by its full name) and proved inside `namespace Foo`
-- statement: theorem Foo.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Foo

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  rw [abs_of_nonneg] <;> norm_num

end Foo
