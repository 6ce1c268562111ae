/-
Talking to the prover service: `POST /v1/complete` through `curl`.

Everything curl needs (URL, headers, the API key, the JSON body, `max-time`) goes to it as a
curl config on standard input (`curl -q --config -`): its command line is the same for every
call and never holds the key, which would otherwise be visible to every user of the machine in
the process list. Each failure gets its own message: service not reachable, timed out, refused
(HTTP error with the service's `{"error": {"code", "message"}}`), answer not JSON.

Answers are cached for the session by endpoint, API key and request (goal, declaration, prefix,
settings), in an `IO.Ref` created by `initialize`: re-elaborating a file does not ask the service
again, and after `set_option prover.endpoint …` (or a new key) the new service is asked. The key
enters the cache only as its hash.

Written for Lean v4.9.0-rc1. Core APIs used, and where they are defined:
- `IO.Process.spawn`, `IO.Process.Child.takeStdin`, `IO.Process.Child.wait`,
  `IO.FS.Handle.putStr`/`flush`/`readToEnd`, `IO.asTask`, `IO.ofExcept`
  (`src/Init/System/IO.lean`, `src/Init/System/Process.lean`); Batteries
  `Batteries/Lean/IO/Process.lean` uses exactly this sequence at this version;
- `initialize name : IO.Ref _ ← IO.mkRef _` (builtin command; Batteries
  `Batteries/Linter/UnreachableTactic.lean` at this version);
- `Lean.Json.mkObj`, `Lean.Json.compress`, `Lean.Json.parse`, `Lean.Json.getObjVal?`,
  `Lean.Json.getObjValAs?`, `deriving FromJson` (`src/Lean/Data/Json/*.lean`);
- `Lean.versionString` (`src/Init/Meta.lean`); `hash` on `String` (`Hashable String`,
  `src/Init/Data/Hashable.lean`).
-/
import Lean
import ProverTactic.Config

namespace ProverTactic
open Lean

/-- One candidate of the service's answer (`POST /v1/complete`); extra fields are ignored. -/
structure ProverCandidate where
  text : String
  verified : Option Bool := none
  verdict : Option String := none
  deriving FromJson, Inhabited

structure ProverAnswer where
  candidates : Array ProverCandidate
  notes : Option (Array String) := none
  deriving FromJson, Inhabited

/-- What the tactic sends. The exact JSON is pinned in
`ProverTacticTest/fixtures/complete_request.json`, which the service's tests validate too. -/
structure ProverRequest where
  header : String
  declaration : String
  goals : Array String
  tacticPrefix : String
  kind : String
  numSamples : Nat
  timeoutS : Nat
  mathlibVersion : Option String

def ProverRequest.json (r : ProverRequest) : Json :=
  Json.mkObj [
    ("header", toJson r.header),
    ("declaration", toJson r.declaration),
    ("goals", toJson r.goals),
    ("tactic_prefix", toJson r.tacticPrefix),
    ("kind", toJson r.kind),
    ("num_samples", toJson r.numSamples),
    ("timeout", toJson r.timeoutS),
    ("verify", toJson true),
    ("lean_version", toJson Lean.versionString),
    ("mathlib_version", toJson r.mathlibVersion)]

/-- Mathlib's revision from the project's `lake-manifest.json` (the working directory of the
Lean server is the project), so the service can say when its Mathlib differs. -/
def readMathlibVersion : IO (Option String) := do
  let path := System.FilePath.mk "lake-manifest.json"
  unless (← path.pathExists) do return none
  let text ← IO.FS.readFile path
  let .ok j := Json.parse text | return none
  let .ok packages := j.getObjVal? "packages" | return none
  let .ok list := packages.getArr? | return none
  for p in list do
    if (p.getObjValAs? String "name").toOption == some "mathlib" then
      return (p.getObjValAs? String "rev").toOption
  return none

/-- A double-quoted value of a curl config file: `\` and `"` escaped, and line breaks, which
the compressed JSON never holds raw, written as `\n`. -/
def curlQuote (s : String) : String :=
  let s := s.replace "\\" "\\\\"
  let s := s.replace "\"" "\\\""
  let s := s.replace "\n" "\\n"
  let s := s.replace "\r" "\\r"
  "\"" ++ s ++ "\""

/-- The curl config for one request. `write-out` appends the HTTP status on a last line. -/
def curlConfig (url : String) (cfg : ProverConfig) (body : String) : String :=
  let auth := (match cfg.apiKey with
    | some key =>
      let value := "Authorization: Bearer " ++ key
      [s!"header = {curlQuote value}"]
    | none => [])
  let lines := [
    s!"url = {curlQuote url}",
    "request = \"POST\"",
    "header = \"Content-Type: application/json\"",
    "header = \"Accept: application/json\""] ++ auth ++ [
    s!"data-binary = {curlQuote body}",
    s!"max-time = {cfg.timeoutS + 5}",
    "silent",
    "show-error",
    "write-out = \"\\n%{http_code}\""]
  "\n".intercalate lines ++ "\n"

/-- Runs `curl -q --config -` with `config` on its standard input; (exit code, stdout, stderr).
`-q` first: the user's `~/.curlrc` is not read, so nothing changes what is sent where. -/
def runCurl (config : String) : IO (UInt32 × String × String) := do
  let child ← IO.Process.spawn {
    cmd := "curl", args := #["-q", "--config", "-"],
    stdin := .piped, stdout := .piped, stderr := .piped }
  let (stdin, child) ← child.takeStdin
  stdin.putStr config
  stdin.flush
  -- `stdin` is not used below: its handle is released here, so curl sees the end of its input.
  let stdout ← IO.asTask child.stdout.readToEnd Task.Priority.dedicated
  let stderr ← child.stderr.readToEnd
  let code ← child.wait
  let out ← IO.ofExcept stdout.get
  return (code, out, stderr)

/-- Why a request failed, in words for the user; `who` names the tactic. -/
def curlFailure (who url : String) (cfg : ProverConfig) (code : Nat) (stderr : String) :
    String :=
  match code with
  | 6 => s!"{who}: cannot resolve the host of the prover service at {url} (prover.endpoint)"
  | 7 => s!"{who}: cannot reach the prover service at {url} (connection refused): is " ++
      "`prover serve` running?"
  | 28 => s!"{who}: no answer from the prover service at {url} within {cfg.timeoutS + 5} s " ++
      "(prover.timeoutMs)"
  | 37 => s!"{who}: cannot read the recorded answer {url}"
  | _ => s!"{who}: curl failed (exit code {code}): {stderr.trim}"

def clipText (s : String) (n : Nat := 200) : String :=
  let s := s.trim
  if s.length ≤ n then s else s.take n ++ "…"

/-- The service's error object, `{"error": {"code", "message"}}`, as `code: message`. -/
def errorText (body : String) : String :=
  let parsed : Except String (String × String) := do
    let j ← Json.parse body.trim
    let e ← j.getObjVal? "error"
    return ((e.getObjValAs? String "code").toOption.getD "error",
      (e.getObjValAs? String "message").toOption.getD "")
  match parsed with
  | .ok (code, msg) => s!"{code}: {msg}"
  | .error _ => clipText body

/-- Answers by `cacheKey`, newest last; at most `cacheSize`. -/
initialize answerCache : IO.Ref (Array (String × ProverAnswer)) ← IO.mkRef #[]

def cacheSize : Nat := 128

/-- What an answer depends on: where it came from (the endpoint as configured, and which API
key, hashed) and what was asked (the request body). -/
def cacheKey (cfg : ProverConfig) (body : String) : String :=
  let key := (match cfg.apiKey with
    | some k => toString (hash k)
    | none => "-")
  cfg.endpoint ++ "\n" ++ key ++ "\n" ++ body

/-- POST `request`, or take its answer from the session cache. -/
def requestAnswer (who : String) (cfg : ProverConfig) (request : ProverRequest) :
    IO (Except String ProverAnswer) := do
  let body := request.json.compress
  let key := cacheKey cfg body
  if let some (_, answer) := (← answerCache.get).find? (·.1 == key) then
    return .ok answer
  let url ← completeUrl cfg.endpoint
  let mut result : UInt32 × String × String := (0, "", "")
  try
    result ← runCurl (curlConfig url cfg body)
  catch e =>
    return .error s!"{who}: could not run curl (is it installed?): {e}"
  let (code, out, err) := result
  if code != 0 then
    return .error (curlFailure who url cfg code.toNat err)
  -- The last line is the HTTP status (`000` for a `file:` URL, which has none).
  let lines := out.splitOn "\n"
  let status := (lines.getLast?.getD "").trim
  let text := "\n".intercalate (lines.take (lines.length - 1))
  if status != "200" && status != "000" then
    return .error (s!"{who}: the prover service refused the request (HTTP {status}, " ++
      s!"{errorText text})")
  let .ok json := Json.parse text.trim
    | return .error s!"{who}: the prover service's answer is not JSON: {clipText text}"
  let .ok answer := (fromJson? json : Except String ProverAnswer)
    | return .error s!"{who}: the prover service's answer has no `candidates`: {clipText text}"
  answerCache.modify fun cache =>
    (if cache.size ≥ cacheSize then cache.extract 1 cache.size else cache).push (key, answer)
  return .ok answer

end ProverTactic
