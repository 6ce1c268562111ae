import Lake
open Lake DSL

/-
The Lean environment `v4_15` (v4.15.0): the REPL runs with this directory as its working
directory, so `import Mathlib` resolves to the Mathlib pinned here. The revisions below are
copied from versions.env, the single source of this environment's pins;
scripts/check_lean_pins.py checks that this file, lean-toolchain and versions.env agree.
-/

package prover_env_v4_15 where
  -- no package options: the REPL elaborates requests with Lean's defaults

require mathlib from git "https://github.com/leanprover-community/mathlib4.git" @ "v4.15.0"

require REPL from git "https://github.com/leanprover-community/repl.git" @ "21966799da3691a0912b5a15193585bd2dd7165d"
