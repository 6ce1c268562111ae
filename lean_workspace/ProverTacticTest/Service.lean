import ProverTactic

theorem fixture_goal (n : Nat) : n + 0 = n := by
  prover?

theorem refused_goal : True := by
  prover?

set_option prover.timeoutMs 1 in
theorem slow_goal : True := by
  prover?

open ProverTactic in
#eval show MetaM Unit from do
  let cfg ← loadProverConfig (← getOptions)
  let request : ProverRequest := {
    header := "", declaration := "theorem cache_probe : True := by\n  ", goals := #["⊢ True"],
    tacticPrefix := "", kind := "proof", numSamples := 1, timeoutS := 5,
    mathlibVersion := none }
  for _ in [0, 1] do
    match (← requestAnswer "cache_probe" cfg request) with
    | .ok answer => IO.println s!"cache_probe: {answer.candidates.size} candidate(s)"
    | .error msg => IO.println msg
