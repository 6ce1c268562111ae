-- cheat: meta code spelled `_root_.Lean…`, registered with `attribute [tactic …]`, adds the goal as an unchecked theorem via a quoted `debug.skipKernelTC`
-- statement: theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
-- expect: rejected
import Mathlib
import Aesop

set_option maxHeartbeats 400000

open BigOperators Real Nat Topology Rat

def trustMe : _root_.Lean.Elab.Tactic.Tactic := fun _ => do
  let goal ← _root_.Lean.Elab.Tactic.getMainGoal
  let type ← goal.getType
  let decl := _root_.Lean.Declaration.thmDecl
    { name := `gcd_fact, levelParams := [], type := type,
      value := _root_.Lean.mkConst ``True.intro }
  _root_.Lean.withOptions (fun o => o.setBool `debug.skipKernelTC true) do
    _root_.Lean.addDecl decl
  goal.assign (_root_.Lean.mkConst `gcd_fact)
  _root_.Lean.Elab.Tactic.replaceMainGoal []

attribute [tactic _root_.Lean.Parser.Tactic.decide] trustMe

theorem mathd_numbertheory_169 : Nat.gcd 20! 200000 = 40000 := by
  decide
