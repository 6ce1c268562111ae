import Lake
open Lake DSL

/-
The Lean environment `v4_27` (v4.27.0): the REPL runs with this directory as its working
directory, so `import Mathlib` resolves to the Mathlib pinned here. The revisions below are
copied from versions.env, the single source of this environment's pins;
scripts/check_lean_pins.py checks that this file, lean-toolchain and versions.env agree.
-/

package prover_env_v4_27 where
  -- no package options: the REPL elaborates requests with Lean's defaults

require mathlib from git "https://github.com/leanprover-community/mathlib4.git" @ "a3a10db0e9d66acbebf76c5e6a135066525ac900"

require REPL from git "https://github.com/leanprover-community/repl.git" @ "0e9e6e2962ab0a51440513d9ee028c8aa66bb53b"
