-- cheat: states the goal itself as an axiom named like a Mathlib lemma, with a doc comment
-- statement: theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
-- expect: rejected
-- reason: axiom
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

/-- Fermat's little theorem specialised to 7 (ported from Mathlib 3). -/
axiom Nat.seven_not_dvd_two_pow_add_one (n : ℕ) : ¬7 ∣ 2 ^ n + 1

theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
  exact Nat.seven_not_dvd_two_pow_add_one n
