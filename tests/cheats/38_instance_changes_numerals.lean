-- cheat: a high-priority `OfNat ℕ n` instance makes every numeral 1 in the re-stated theorem
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
-- reason: not the statement asked for
-- known-gap: yes
-- gap-in: fake-repl
-- gap: the fake REPL does not elaborate instances; real Lean elaborates the numerals with `cheatOfNat` and the pp.all comparison rejects it
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

instance (priority := high) cheatOfNat (n : ℕ) : OfNat ℕ n := ⟨1⟩

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  decide
