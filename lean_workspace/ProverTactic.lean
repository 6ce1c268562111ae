import ProverTactic.Config
import ProverTactic.Transport
import ProverTactic.Tactic

/-!
# ProverTactic

Editor tactics backed by the prover service (`prover serve` + `prover worker`):

- `prover?` closes the goal with a whole proof sampled by the prover model and checked here;
  every working candidate is offered as a "Try this" suggestion. It never admits the goal.
- `prover_step? "prefix"` offers next tactics (starting with the prefix) that make progress.

Configuration, most specific first: `set_option prover.endpoint "http://host:8000"`,
`prover.numSamples`, `prover.timeoutMs`; then `PROVER_ENDPOINT`, `PROVER_NUM_SAMPLES`,
`PROVER_TIMEOUT_MS`, `PROVER_API_KEY`; then the JSON file `$PROVER_TACTIC_CONFIG` (default
`~/.config/prover/tactic.json`) with `endpoint`, `num_samples`, `timeout_ms`, `api_key`.
The API key is never an option and never on a command line.

Pure Lean (no Mathlib dependency); needs `curl` on `PATH`. Written for Lean v4.9.0-rc1, the
toolchain pinned in `lean-toolchain`. Tests in `ProverTacticTest/`: `lake env lean
ProverTacticTest/Offline.lean` (recorded answers, `#guard_msgs`); `pytest -m lean` runs it and
the tests against a mock service (tests/test_editor_lean.py).
-/
