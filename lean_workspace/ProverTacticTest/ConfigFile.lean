import ProverTactic

-- Run by tests/test_editor_lean.py with no PROVER_* variable but PROVER_TACTIC_CONFIG naming a
-- JSON file with the endpoint (the mock service), the sample count and the API key.
theorem config_goal : True := by
  prover?
