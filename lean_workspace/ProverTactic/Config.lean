/-
Where `prover?` finds the prover service, in LLMLean's order: `set_option prover.*` in the file,
then `PROVER_*` environment variables, then a JSON config file, then built-in defaults.

The API key is read only from the environment (`PROVER_API_KEY`) or the config file, never from
an option: options are written in source files, which get committed and shared.

Written for Lean v4.9.0-rc1 (lean_workspace/lean-toolchain). Core APIs used here, and where they
are defined in Lean's sources:
- `register_option` (macro in `src/Lean/Data/Options.lean`; used the same way at this version
  by Batteries `Batteries/Linter/UnreachableTactic.lean`), `Lean.Option.get?`
  (`src/Lean/Data/Options.lean`; Aesop `Aesop/Check.lean` calls it at this version);
- `IO.getEnv`, `IO.currentDir`, `IO.FS.readFile`, `System.FilePath.pathExists`
  (`src/Init/System/IO.lean`, `src/Init/System/FilePath.lean`);
- `Lean.Json.parse`, `Lean.Json.getObjValAs?` (`src/Lean/Data/Json/Parser.lean`,
  `src/Lean/Data/Json/FromToJson.lean`).
-/
import Lean

namespace ProverTactic
open Lean

register_option prover.endpoint : String := {
  defValue := ""
  descr := "URL of the prover service (`/v1/complete` is appended unless the URL ends with " ++
    "it; a `file:` URL replays a recorded answer). Empty: PROVER_ENDPOINT, the config file, " ++
    "or http://127.0.0.1:8000"
}

register_option prover.numSamples : Nat := {
  defValue := 0
  descr := "completions to ask the service for. 0: PROVER_NUM_SAMPLES, the config file, or 8"
}

register_option prover.timeoutMs : Nat := {
  defValue := 0
  descr := "milliseconds the service may take (sampling and its own checks). " ++
    "0: PROVER_TIMEOUT_MS, the config file, or 60000"
}

/-- What one call of the tactic uses. -/
structure ProverConfig where
  endpoint : String
  numSamples : Nat
  timeoutMs : Nat
  apiKey : Option String
  deriving Inhabited

def defaultEndpoint : String := "http://127.0.0.1:8000"
def defaultNumSamples : Nat := 8
def defaultTimeoutMs : Nat := 60000

/-- `$PROVER_TACTIC_CONFIG`, else `$XDG_CONFIG_HOME/prover/tactic.json`, else
`$HOME/.config/prover/tactic.json`. -/
def configPath : IO (Option System.FilePath) := do
  if let some p := (← IO.getEnv "PROVER_TACTIC_CONFIG") then
    return some (System.FilePath.mk p)
  if let some x := (← IO.getEnv "XDG_CONFIG_HOME") then
    return some (System.FilePath.mk x / "prover" / "tactic.json")
  if let some h := (← IO.getEnv "HOME") then
    return some (System.FilePath.mk h / ".config" / "prover" / "tactic.json")
  return none

/-- The config file's object (`{"endpoint", "num_samples", "timeout_ms", "api_key"}`), or
`null` when there is none. A file that is not JSON is an error, not silently ignored. -/
def readConfigFile : IO Json := do
  let some path ← configPath | return Json.null
  unless (← path.pathExists) do return Json.null
  match Json.parse (← IO.FS.readFile path) with
  | .ok j => return j
  | .error e => throw <| IO.userError s!"the config file {path} is not valid JSON: {e}"

private def fileString (j : Json) (key : String) : Option String :=
  match j.getObjValAs? String key with
  | .ok v => if v.trim.isEmpty then none else some v.trim
  | .error _ => none

private def fileNat (j : Json) (key : String) : Option Nat :=
  match j.getObjValAs? Nat key with
  | .ok v => if v == 0 then none else some v
  | .error _ => none

private def envString (key : String) : IO (Option String) := do
  match (← IO.getEnv key) with
  | some v => return if v.trim.isEmpty then none else some v.trim
  | none => return none

private def envNat (key : String) : IO (Option Nat) := do
  let parsed := (← envString key).bind String.toNat?
  return parsed.bind fun n => if n == 0 then none else some n

/-- The configuration for options `opts`: each setting from the first place that has it. -/
def loadProverConfig (opts : Options) : IO ProverConfig := do
  let file ← readConfigFile
  let optEndpoint := (prover.endpoint.get? opts).bind fun s => if s.isEmpty then none else some s
  let optSamples := (prover.numSamples.get? opts).bind fun n => if n == 0 then none else some n
  let optTimeout := (prover.timeoutMs.get? opts).bind fun n => if n == 0 then none else some n
  let endpoint := optEndpoint <|> (← envString "PROVER_ENDPOINT") <|> fileString file "endpoint"
  let samples := optSamples <|> (← envNat "PROVER_NUM_SAMPLES") <|> fileNat file "num_samples"
  let timeout := optTimeout <|> (← envNat "PROVER_TIMEOUT_MS") <|> fileNat file "timeout_ms"
  let apiKey := (← envString "PROVER_API_KEY") <|> fileString file "api_key"
  return {
    endpoint := endpoint.getD defaultEndpoint
    numSamples := samples.getD defaultNumSamples
    timeoutMs := timeout.getD defaultTimeoutMs
    apiKey := apiKey
  }

/-- The URL to POST to. `file:rel/path` (relative to the working directory) and
`file:///abs/path` replay a recorded answer; anything else gets `/v1/complete` appended unless
it already ends with it. -/
def completeUrl (endpoint : String) : IO String := do
  if endpoint.startsWith "file:" then
    let path := endpoint.drop 5
    if path.startsWith "//" then
      return endpoint
    return "file://" ++ ((← IO.currentDir) / path).toString
  let base := if endpoint.endsWith "/" then endpoint.dropRight 1 else endpoint
  return if base.endsWith "/v1/complete" then base else base ++ "/v1/complete"

/-- Whole seconds the service gets (the request's `timeout`), at least one. -/
def ProverConfig.timeoutS (c : ProverConfig) : Nat := max 1 ((c.timeoutMs + 999) / 1000)

end ProverTactic
