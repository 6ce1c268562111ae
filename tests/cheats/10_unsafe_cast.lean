-- cheat: forges a proof with `unsafe def` and `unsafeCast`
-- statement: theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
-- expect: rejected
-- reason: unsafe
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

unsafe def forgeProof {p : Prop} : p := unsafeCast ()

theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
  exact forgeProof
