-- honest: the statement comes with its context (as a LeanDojo theorem does), which leaves namespace Foo and a section open; the proof uses a private helper of the context
-- statement: theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: proved
-- context: yes
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Foo

section

private lemma sub_eq : (120 : ℝ) / 100 * 30 - 130 / 100 * 20 = 10 := by
  norm_num

-- context ends
theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  rw [sub_eq, abs_of_nonneg] <;> norm_num

end

end Foo
