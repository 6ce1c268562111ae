-- cheat: declares Foo.Foo.mathd_algebra_10 and leaves namespace Foo open, so an audit line that named `Foo.mathd_algebra_10` without `_root_` would find it
-- statement: theorem Foo.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: rejected
-- reason: is not declared in the file
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Foo

theorem Foo.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) ≥ 0 := by
  exact abs_nonneg _
