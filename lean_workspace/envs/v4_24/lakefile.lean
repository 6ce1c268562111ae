import Lake
open Lake DSL

/-
The Lean environment `v4_24` (v4.24.0): the REPL runs with this directory as its working
directory, so `import Mathlib` resolves to the Mathlib pinned here. The revisions below are
copied from versions.env, the single source of this environment's pins;
scripts/check_lean_pins.py checks that this file, lean-toolchain and versions.env agree.
-/

package prover_env_v4_24 where
  -- no package options: the REPL elaborates requests with Lean's defaults

require mathlib from git "https://github.com/leanprover-community/mathlib4.git" @ "f897ebcf72cd16f89ab4577d0c826cd14afaafc7"

require REPL from git "https://github.com/leanprover-community/repl.git" @ "8fff8552292860d349b459d6a811e6915671dc0d"
