/-
The tactics `prover?` and `prover_step? "prefix"`.

Both send the file up to the tactic (split into the header and the declaration so far) and the
pretty-printed main goal to the prover service, then re-check every candidate here, in the
user's own environment, which is the check that counts (the service's Mathlib may differ, and
it sees only the text before the tactic). Neither ever admits a goal:

- `prover?` closes the main goal with the first candidate that closes it and offers every
  candidate that does as a "Try this" suggestion; if none does, it fails, listing why each did
  not.
- `prover_step?` changes nothing; it offers the candidate next tactics that make progress
  (those that close the goal first). Each candidate starts with the prefix, if one is given.

A candidate is checked on the main goal alone, with error recovery off, inside
`withoutModifyingState`: it must not throw, log an error, or leave `sorry` in the proof term;
for `prover?` it must leave no goal and no unassigned metavariable. Info trees are off while
candidates run, and their syntax is moved onto the tactic's position (`relocate`), because it
comes from parsing a string, whose positions are not positions in the file.

Written for Lean v4.9.0-rc1. Core APIs used, and where they are defined:
- `Lean.Meta.Tactic.TryThis.addSuggestion`, `addSuggestions`, `Suggestion` with
  `suggestion := .string _` (`src/Lean/Meta/Tactic/TryThis.lean`; at this
  version Batteries `test/tryThis.lean` and Aesop `Aesop/Util/Basic.lean` use them this way);
- `Lean.Parser.runParserCategory` (`src/Lean/Parser/Extension.lean`; the REPL at tag
  v4.9.0-rc1 parses tactics with it, `REPL/Snapshots.lean`);
- `Lean.Elab.Tactic.evalTactic`, `getUnsolvedGoals`, `setGoals`, `withoutRecover`,
  `Lean.Elab.Term.withoutErrToSorry`, `withoutModifyingState`, `throwNoGoalsToBeSolved`
  (`src/Lean/Elab/Tactic/Basic.lean`, `src/Lean/Elab/Term.lean`,
  `src/Lean/Util/MonadBacktrack.lean`);
- `tryCatchRuntimeEx` (`MonadRuntimeException`, `src/Lean/CoreM.lean`), `Lean.withCurrHeartbeats`
  (`src/Lean/CoreM.lean`), `Lean.FileMap.toPosition` (`src/Lean/Data/Position.lean`), the
  `Syntax` and `SourceInfo` constructors (`src/Init/Prelude.lean`); where each was checked at
  v4.9.0-rc1 is listed in docs/editor.md;
- `Lean.Elab.withEnableInfoTree` (`src/Lean/Elab/InfoTree/Main.lean`);
- `Lean.Meta.ppGoal` (`src/Lean/Meta/PPGoal.lean`), `Lean.Expr.hasSorry`, `Lean.Expr.hasExprMVar`
  (`src/Lean/Util/Sorry.lean`), `Lean.MessageLog.toList`, `Lean.MessageData.toString`
  (`src/Lean/Message.lean`), `Lean.FileMap` (`src/Lean/Data/Position.lean`).
-/
import Lean
import ProverTactic.Transport

namespace ProverTactic
open Lean Elab Tactic Meta

/-- How a line that starts a declaration at column 0 begins. -/
def declStarts : List String :=
  ["theorem ", "lemma ", "example", "def ", "abbrev ", "instance", "@[", "private ",
   "protected ", "noncomputable def", "noncomputable instance", "nonrec ", "partial ",
   "unsafe "]

def isDeclStart (line : String) : Bool := declStarts.any fun p => line.startsWith p

/-- The text before the tactic as (header, declaration so far): the declaration starts at the
last line that begins a declaration. -/
def splitContext (before : String) : String × String := Id.run do
  let lines := before.splitOn "\n"
  let mut start := 0
  let mut i := 0
  for line in lines do
    if isDeclStart line then
      start := i
    i := i + 1
  let header := "\n".intercalate (lines.take start)
  return (if start > 0 then header ++ "\n" else header, "\n".intercalate (lines.drop start))

/-- A tactic sequence as one tactic, `(tac₁\n tac₂\n)`: every later line moves one column
right, so it stays aligned with the first line, which follows the `(`. -/
def wrapTactics (text : String) : String := "(" ++ text.replace "\n" "\n " ++ "\n)"

def mentionsSorry (text : String) : Bool :=
  (text.splitOn "sorry").length > 1 || (text.splitOn "admit").length > 1

def firstLine (text : String) : String := (text.splitOn "\n").headD ""

def isError (m : Lean.Message) : Bool :=
  match m.severity with
  | .error => true
  | _ => false

/-- What a candidate does to the goal. -/
inductive ProverTrial where
  | closes
  | progress (goals : Nat)
  | fails (why : String)

/-- The candidate's syntax with every position moved to `ref`'s range (synthetic, so no info is
attributed to text that is not in the file): the parser gave it positions inside the candidate
string, which the file map would turn into unrelated places of the file. Messages the candidate
logs (`trace_state`, a `simp?` suggestion, a linter) land on the tactic instead. -/
partial def relocate (info : SourceInfo) : Syntax → Syntax
  | .node _ kind args => .node info kind (args.map (relocate info))
  | .atom _ val => .atom info val
  | .ident _ raw val pre => .ident info raw val pre
  | .missing => .missing

/-- `text` parsed as one tactic, positioned at the tactic being elaborated. -/
def parseCandidate (text : String) : TacticM (Option Syntax) := do
  let .ok stx := Parser.runParserCategory (← getEnv) `tactic (wrapTactics text)
    | return none
  let info := (match (← getRef).getRange? with
    | some r => SourceInfo.synthetic r.start r.stop
    | none => SourceInfo.none)
  return some (relocate info stx)

/-- Run `text` on goal `g` alone and undo everything (state, messages, info trees).

Each candidate gets a heartbeat budget of its own (`withCurrHeartbeats`: the count restarts
here, so earlier candidates do not use up later ones), and a candidate that runs out of it, or
of recursion depth, fails alone: `try … catch` lets such runtime exceptions through
(`Core.tryCatch`), `tryCatchRuntimeEx` does not. -/
def tryCandidate (g : MVarId) (text : String) : TacticM ProverTrial := do
  if mentionsSorry text then
    return .fails "uses sorry"
  let some stx ← parseCandidate text
    | return .fails "does not parse"
  withoutModifyingState <| withEnableInfoTree false do
    let before := (← getThe Core.State).messages.toList.length
    tryCatchRuntimeEx
      (withCurrHeartbeats do
        setGoals [g]
        Term.withoutErrToSorry <| withoutRecover <| evalTactic stx
        let errors := ((← getThe Core.State).messages.toList.drop before).filter isError
        if let some m := errors.head? then
          return .fails s!"reports an error: {clipText (← m.data.toString)}"
        let proof ← instantiateMVars (mkMVar g)
        if proof.hasSorry then
          return .fails "uses sorry"
        let left ← getUnsolvedGoals
        if left.isEmpty then
          -- A tactic may drop goals it did not solve: the proof must be complete.
          if proof.hasExprMVar then
            return .fails "leaves metavariables unassigned"
          return .closes
        if left == [g] then
          return .fails "changes nothing"
        return .progress left.length)
      (fun e => do return .fails s!"fails: {clipText (← e.toMessageData.toString)}")

/-- Ask the service for candidates at this tactic, for the main goal `g`. -/
def askService (who kind pfx : String) (g : MVarId) : TacticM (Array ProverCandidate) := do
  let cfg ← loadProverConfig (← getOptions)
  let some range := (← getRef).getRange?
    | throwError "{who}: the tactic has no position in the file"
  let src := (← getFileMap).source
  let (header, declaration) := splitContext (src.extract ⟨0⟩ range.start)
  let goal := toString (← ppGoal g)
  let request : ProverRequest := {
    header := header, declaration := declaration, goals := #[goal], tacticPrefix := pfx,
    kind := kind, numSamples := cfg.numSamples, timeoutS := cfg.timeoutS,
    mathlibVersion := (← readMathlibVersion) }
  match (← requestAnswer who cfg request) with
  | .ok answer =>
    if answer.candidates.isEmpty then
      throwError "{who}: the prover service sent no candidates"
    return answer.candidates
  | .error msg => throwError msg

/-- `texts` without repeats (after trimming), first occurrence kept. -/
def dedupTexts (texts : Array String) : Array String := Id.run do
  let mut out : Array String := #[]
  for t in texts do
    let t := t.trim
    unless out.contains t do
      out := out.push t
  return out

/-- Offer `texts` as "Try this" replacements of the tactic; later lines are indented to the
tactic's column, so a multi-line proof lands as one block. The column is counted in characters
(`FileMap.toPosition`), not bytes: after `· ` or `∀` on the same line a byte count would
indent the later lines too far. -/
def offerSuggestions (texts : Array String) : TacticM Unit := do
  let ref ← getRef
  let some range := ref.getRange? | return
  let column := ((← getFileMap).toPosition range.start).column
  let pad := "".pushn ' ' column
  let suggestions : Array Lean.Meta.Tactic.TryThis.Suggestion := (dedupTexts texts).map fun t =>
    { suggestion := .string (t.replace "\n" ("\n" ++ pad)) }
  match suggestions.toList with
  | [one] => Lean.Meta.Tactic.TryThis.addSuggestion ref one
  | _ => Lean.Meta.Tactic.TryThis.addSuggestions ref suggestions

private def goalsText (n : Nat) : String :=
  if n == 1 then "leaves 1 goal open" else s!"leaves {n} goals open"

/-- `prover?`: close the main goal with a proof from the prover service, checked here; every
candidate that closes it is offered as a suggestion. Configure with `set_option prover.endpoint`,
`prover.numSamples`, `prover.timeoutMs` (or `PROVER_*` variables, or the config file). -/
elab (name := proverQ) "prover?" : tactic => do
  let who := "prover?"
  let g :: rest ← getUnsolvedGoals | throwNoGoalsToBeSolved
  let candidates ← askService who "proof" "" g
  let texts := dedupTexts (candidates.map (·.text))
  let mut working : Array String := #[]
  let mut failures : Array String := #[]
  for t in texts do
    match (← tryCandidate g t) with
    | .closes => working := working.push t
    | .progress n => failures := failures.push s!"• {firstLine t}: {goalsText n}"
    | .fails why => failures := failures.push s!"• {firstLine t}: {why}"
  let some best := working[0]?
    | throwError (s!"{who}: none of the {texts.size} candidates from the prover service " ++
        "closes the goal here:\n" ++ "\n".intercalate failures.toList)
  let some stx ← parseCandidate best
    | throwError "{who}: internal error: a checked candidate no longer parses"
  setGoals [g]
  -- The replay gets a fresh budget too: the trials must not have used up the declaration's.
  withCurrHeartbeats <| withEnableInfoTree false <| Term.withoutErrToSorry <| withoutRecover <|
    evalTactic stx
  setGoals ((← getUnsolvedGoals) ++ rest)
  offerSuggestions working

/-- `prover_step? "prefix"`: next-tactic suggestions from the prover service that start with
`prefix` and make progress here (those that close the goal first). Changes nothing itself. -/
elab (name := proverStepQ) "prover_step?" pfx:(ppSpace str)? : tactic => do
  let who := "prover_step?"
  let pfxText := (pfx.map (·.getString)).getD ""
  let g :: _ ← getUnsolvedGoals | throwNoGoalsToBeSolved
  let candidates ← askService who "step" pfxText g
  let texts := dedupTexts (candidates.map (·.text))
  let mut closing : Array String := #[]
  let mut progress : Array String := #[]
  let mut failures : Array String := #[]
  for t in texts do
    if !t.startsWith pfxText then
      failures := failures.push s!"• {firstLine t}: does not start with {repr pfxText}"
      continue
    match (← tryCandidate g t) with
    | .closes => closing := closing.push t
    | .progress _ => progress := progress.push t
    | .fails why => failures := failures.push s!"• {firstLine t}: {why}"
  let working := closing ++ progress
  if working.isEmpty then
    throwError (s!"{who}: none of the {texts.size} candidates from the prover service " ++
      "makes progress here:\n" ++ "\n".intercalate failures.toList)
  offerSuggestions working

end ProverTactic
