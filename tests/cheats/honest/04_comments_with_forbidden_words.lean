-- honest: a correct proof that must not be rejected
-- statement: theorem mathd_algebra_455 (x : ℝ) (h₀ : 2 * (2 * (2 * (2 * x))) = 48) : x = 3 := by
-- expect: proved
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

/- No tricks here: no native_decide, no #eval, no macro, no unsafe code,
   no `set_option debug.skipKernelTC`, no implemented_by. -/
theorem mathd_algebra_455 (x : ℝ) (h₀ : 2 * (2 * (2 * (2 * x))) = 48) : x = 3 := by
  -- we don't use sorry or axiom here
  linarith -- admit nothing, #exit nowhere
