-- cheat: an `Inhabited False` instance built from `sorry` and an `opaque` constant of type False
-- statement: theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
-- expect: incomplete
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

instance : Inhabited False := ⟨sorry⟩

opaque forged : False

theorem imo_1964_p1_2 (n : ℕ) : ¬7 ∣ 2 ^ n + 1 := by
  exact forged.elim
