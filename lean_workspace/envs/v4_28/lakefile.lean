import Lake
open Lake DSL

/-
The Lean environment `v4_28` (v4.28.0): the REPL runs with this directory as its working
directory, so `import Mathlib` resolves to the Mathlib pinned here. The revisions below are
copied from versions.env, the single source of this environment's pins;
scripts/check_lean_pins.py checks that this file, lean-toolchain and versions.env agree.
-/

package prover_env_v4_28 where
  -- no package options: the REPL elaborates requests with Lean's defaults

require mathlib from git "https://github.com/leanprover-community/mathlib4.git" @ "8f9d9cff6bd728b17a24e163c9402775d9e6a365"

require REPL from git "https://github.com/leanprover-community/repl.git" @ "527590ce2b9f3b5c4a9a1031e5b8fcfb909b9a4a"
