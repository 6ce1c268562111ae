import Lake
open Lake DSL

/-
Lean workspace used by the prover's verifier: the REPL runs with this directory as its
working directory (through `lake env`), so `import Mathlib` resolves to the pinned Mathlib.

The revisions below are copied from versions.env, which is the single source of the pins;
scripts/check_lean_pins.py checks that this file, lean-toolchain and versions.env agree.
-/

package prover_workspace where
  -- no package options: the REPL elaborates requests with Lean's defaults

require mathlib from git "https://github.com/leanprover-community/mathlib4.git" @ "d1d1e4b72c6e009edd97cabe1d661b021fe8eeae"

require REPL from git "https://github.com/leanprover-community/repl.git" @ "7df77c0a1c9188ab58c76d4138a06ae5e0c32282"

/-- Editor tactics `prover?` and `prover_step?` (pure Lean, no Mathlib import; see
ProverTactic.lean). Tests: `lake env lean ProverTacticTest/Offline.lean`. -/
@[default_target]
lean_lib ProverTactic
