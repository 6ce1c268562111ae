-- honest: a namespaced theorem with a protected and a private helper in nested namespaces
-- statement: theorem Foo.Bar.mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

namespace Foo.Bar

private lemma sub_eq : (120 : ℝ) / 100 * 30 - 130 / 100 * 20 = 10 := by
  norm_num

protected lemma ten_nonneg : (0 : ℝ) ≤ 10 := by
  norm_num

theorem mathd_algebra_10 : abs ((120 : ℝ) / 100 * 30 - 130 / 100 * 20) = 10 := by
  rw [sub_eq]
  exact abs_of_nonneg Bar.ten_nonneg

end Foo.Bar
