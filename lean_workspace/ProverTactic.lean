/-!
# ProverTactic

Placeholder module. The editor-integration work will put the prover's editor tactic here
(the tactic that sends the current goal to the proving service and inserts the proof it
returns). Until then this library holds no declarations; it only has to compile so that
`lake build` of the workspace succeeds.
-/
