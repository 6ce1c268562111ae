#!/usr/bin/env bash
# Install the real Lean stack for the verifier: elan, the pinned toolchain, the pinned
# Mathlib (prebuilt .olean files from Mathlib's cache) and the pinned REPL, all inside one
# Lean environment's workspace. This is what `make lean [ENV=NAME]` runs. The default
# environment, v4_9, is lean_workspace/ (pins in lean_workspace/versions.env); another one,
# NAME, is lean_workspace/envs/NAME/ (pins in its versions.env).
#
#   scripts/install_lean.sh                install what is missing, then sanity-check
#   scripts/install_lean.sh --env NAME     the same for environment NAME (make lean ENV=NAME)
#   scripts/install_lean.sh --check        only report what is installed / missing
#   scripts/install_lean.sh --from-source  build Mathlib locally instead of `lake exe cache get`
#
# Every step that needs the network first checks that the host answers; when it does not,
# the script prints one line naming the step and exits with status 2. Other failures exit 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WS="${PROVER_LEAN_WORKSPACE:-$ROOT/lean_workspace}"
ELAN_HOME="${ELAN_HOME:-$HOME/.elan}"
ELAN_INIT_URL="https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh"
# Host of Mathlib's .olean cache for this Mathlib revision (Cache/Requests.lean at the pin).
MATHLIB_CACHE_URL="https://lakecache.blob.core.windows.net/mathlib4"
OFFLINE_HINT="run this on a machine with internet access, or copy ~/.elan and lean_workspace/.lake from one"

MODE=install
FROM_SOURCE=0
ENV_NAME=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) MODE=check ;;
    --from-source) FROM_SOURCE=1 ;;
    --env) shift; ENV_NAME="${1:-}"; [ -n "$ENV_NAME" ] || { echo "make lean: --env needs a NAME" >&2; exit 2; } ;;
    --env=*) ENV_NAME="${1#--env=}" ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make lean: unknown option '$1' (use --env NAME, --check, --from-source or --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$ENV_NAME" ] && [ "$ENV_NAME" != v4_9 ]; then
  WS="$ROOT/lean_workspace/envs/$ENV_NAME"
  if [ ! -d "$WS" ]; then
    known="v4_9 $(find "$ROOT/lean_workspace/envs" -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null)"
    echo "make lean: no Lean environment '$ENV_NAME' (known: $known)" >&2
    exit 2
  fi
elif [ -n "$ENV_NAME" ]; then
  WS="$ROOT/lean_workspace"
fi
ENV_LABEL="${ENV_NAME:-v4_9}"

die() { echo "make lean: $*" >&2; exit 1; }
say() { echo "make lean: $*"; }

# need_net URL STEP: fail with one plain line unless URL's host answers within 10 s.
# Any HTTP answer counts (no -f): we test the connection, not the page.
need_net() {
  local url="$1" step="$2" host
  host="${url#*://}"; host="${host%%/*}"
  command -v curl >/dev/null 2>&1 \
    || { echo "make lean: curl is needed to $step — install curl, or $OFFLINE_HINT" >&2; exit 2; }
  if ! curl -sS --max-time 10 -o /dev/null "$url" >/dev/null 2>&1; then
    echo "make lean: cannot reach $host to $step — $OFFLINE_HINT" >&2
    exit 2
  fi
}

# --- pins (parsed, not sourced) -------------------------------------------------------
[ -f "$WS/versions.env" ] || die "$WS/versions.env not found (set PROVER_LEAN_WORKSPACE or run from the repo)"
pin() {
  local v
  v="$(sed -n "s/^$1=//p" "$WS/versions.env" | tail -n 1)"
  [ -n "$v" ] || die "versions.env has no $1"
  printf '%s' "$v"
}
LEAN_TOOLCHAIN="$(pin LEAN_TOOLCHAIN)"
MATHLIB_REV="$(pin MATHLIB_REV)"
REPL_REV="$(pin REPL_REV)"

if command -v python3 >/dev/null 2>&1 && [ -f "$ROOT/scripts/check_lean_pins.py" ]; then
  python3 "$ROOT/scripts/check_lean_pins.py" --workspace "$WS" --quiet \
    || die "the pins of $WS are inconsistent (see above); fix versions.env, lean-toolchain or lakefile.lean"
fi

MATHLIB_DIR="$WS/.lake/packages/mathlib"
REPL_DIR="$WS/.lake/packages/REPL"
REPL_BIN="$REPL_DIR/.lake/build/bin/repl"
MATHLIB_OLEAN="$MATHLIB_DIR/.lake/build/lib/Mathlib.olean"
TACTIC_OLEAN="$WS/.lake/build/lib/ProverTactic.olean"
# The editor package is built where the workspace declares it (lean_workspace/, Lean 4.9 only).
if grep -q '^lean_lib ProverTactic' "$WS/lakefile.lean"; then TACTIC=ProverTactic; else TACTIC=""; fi

find_elan() {
  if command -v elan >/dev/null 2>&1; then command -v elan
  elif [ -x "$ELAN_HOME/bin/elan" ]; then echo "$ELAN_HOME/bin/elan"
  else return 1; fi
}
toolchain_installed() {
  # elan lists e.g. "leanprover/lean4:v4.9.0-rc1" (possibly followed by " (default)").
  "$ELAN" toolchain list 2>/dev/null | sed 's/ .*//' | grep -qxF "$LEAN_TOOLCHAIN"
}
git_rev() { git -C "$1" rev-parse HEAD 2>/dev/null || true; }

# --- --check: report only ---------------------------------------------------------------
if [ "$MODE" = check ]; then
  missing=0
  report() { printf '  %-10s %-8s %s\n' "$1" "$2" "$3"; [ "$2" = ok ] || missing=$((missing + 1)); }
  echo "Lean install status (workspace: $WS)"
  if ELAN="$(find_elan)"; then
    report elan ok "$ELAN ($("$ELAN" --version 2>/dev/null | head -n 1))"
    if toolchain_installed; then report toolchain ok "$LEAN_TOOLCHAIN"
    else report toolchain MISSING "$LEAN_TOOLCHAIN"; fi
  else
    report elan MISSING "not on PATH and not in $ELAN_HOME/bin"
    report toolchain MISSING "$LEAN_TOOLCHAIN (needs elan)"
  fi
  rev="$(git_rev "$MATHLIB_DIR")"
  if [ -z "$rev" ]; then report mathlib MISSING "no checkout at $MATHLIB_DIR"
  elif [ "$rev" != "$MATHLIB_REV" ]; then report mathlib WRONG "checkout at $rev, pin is $MATHLIB_REV"
  else report mathlib ok "$MATHLIB_REV"; fi
  if [ -f "$MATHLIB_OLEAN" ]; then report oleans ok "$MATHLIB_OLEAN"
  else report oleans MISSING "Mathlib .olean files (lake exe cache get)"; fi
  rev="$(git_rev "$REPL_DIR")"
  if [ -z "$rev" ]; then report repl-src MISSING "no checkout at $REPL_DIR"
  elif [ "$rev" != "$REPL_REV" ]; then report repl-src WRONG "checkout at $rev, pin is $REPL_REV"
  else report repl-src ok "$REPL_REV"; fi
  if [ -x "$REPL_BIN" ]; then report repl-bin ok "$REPL_BIN"
  else report repl-bin MISSING "$REPL_BIN"; fi
  if [ -z "$TACTIC" ]; then :
  elif [ -f "$TACTIC_OLEAN" ]; then report tactic ok "$TACTIC_OLEAN"
  else report tactic MISSING "ProverTactic not built"; fi
  if [ "$missing" -eq 0 ]; then echo "all present"; exit 0; fi
  echo "$missing item(s) missing or wrong: run 'make lean${ENV_NAME:+ ENV=$ENV_NAME}' (scripts/install_lean.sh)"
  exit 1
fi

# --- 1. elan ----------------------------------------------------------------------------
if ELAN="$(find_elan)"; then
  say "elan present: $ELAN"
else
  need_net "$ELAN_INIT_URL" "download the elan installer"
  need_net "https://github.com" "download elan"
  say "installing elan into $ELAN_HOME"
  tmp="$(mktemp)"
  trap 'rm -f "$tmp"' EXIT
  curl -sSfL --max-time 120 -o "$tmp" "$ELAN_INIT_URL" \
    || { echo "make lean: downloading the elan installer failed — $OFFLINE_HINT" >&2; exit 2; }
  sh "$tmp" -y --default-toolchain none || die "the elan installer failed (see its output above)"
  ELAN="$(find_elan)" || die "elan was installed but $ELAN_HOME/bin/elan is missing"
fi
ELAN_BIN="$(dirname "$ELAN")"
export PATH="$ELAN_BIN:$PATH"
LAKE="$ELAN_BIN/lake"
[ -x "$LAKE" ] || LAKE="$(command -v lake || true)"
[ -n "$LAKE" ] || die "elan is installed but no 'lake' proxy was found next to it"

# --- 2. toolchain -----------------------------------------------------------------------
if toolchain_installed; then
  say "toolchain present: $LEAN_TOOLCHAIN"
else
  need_net "https://github.com" "download the Lean toolchain $LEAN_TOOLCHAIN"
  say "installing toolchain $LEAN_TOOLCHAIN"
  "$ELAN" toolchain install "$LEAN_TOOLCHAIN" || die "elan could not install $LEAN_TOOLCHAIN"
fi

cd "$WS"

# --- 3. dependencies (git clones of Mathlib and its dependencies, and the REPL) ---------
if [ "$(git_rev "$MATHLIB_DIR")" = "$MATHLIB_REV" ] && [ "$(git_rev "$REPL_DIR")" = "$REPL_REV" ] \
   && [ -f "$WS/lake-manifest.json" ]; then
  say "dependencies present: mathlib ${MATHLIB_REV:0:12}, REPL ${REPL_REV:0:12}"
else
  need_net "https://github.com" "clone Mathlib and the REPL"
  say "resolving dependencies (clones Mathlib at ${MATHLIB_REV:0:12} and REPL at ${REPL_REV:0:12})"
  # MATHLIB_NO_CACHE_ON_UPDATE: Mathlib's post-update hook would fetch the cache itself;
  # step 4 does that explicitly instead.
  MATHLIB_NO_CACHE_ON_UPDATE=1 "$LAKE" update || die "'lake update' failed in $WS (see above)"
  [ "$(git_rev "$MATHLIB_DIR")" = "$MATHLIB_REV" ] \
    || die "after 'lake update' Mathlib is at $(git_rev "$MATHLIB_DIR"), expected $MATHLIB_REV"
fi

# --- 4. Mathlib .olean files --------------------------------------------------------------
if [ -f "$MATHLIB_OLEAN" ]; then
  say "Mathlib .olean files present"
elif [ "$FROM_SOURCE" -eq 1 ]; then
  say "building Mathlib from source (hours on a small machine; needs plenty of RAM)"
  "$LAKE" build Mathlib || die "'lake build Mathlib' failed (see above)"
else
  need_net "$MATHLIB_CACHE_URL" "download Mathlib's prebuilt .olean files"
  say "downloading Mathlib's .olean cache (several GB)"
  "$LAKE" exe cache get \
    || die "'lake exe cache get' failed; retry, or run 'scripts/install_lean.sh --from-source' to build Mathlib locally"
  [ -f "$MATHLIB_OLEAN" ] \
    || die "cache download finished but $MATHLIB_OLEAN is missing; retry, or use --from-source"
fi

# --- 5. REPL executable and our tactic library (no network: sources are local now) ------
say "building the REPL executable${TACTIC:+ and $TACTIC}"
# shellcheck disable=SC2086  # TACTIC is one word or empty
"$LAKE" build repl $TACTIC || die "'lake build repl $TACTIC' failed (see above)"
[ -x "$REPL_BIN" ] || die "build finished but $REPL_BIN is missing"

# --- 6. sanity checks ---------------------------------------------------------------------
lean_path="$("$LAKE" env printenv LEAN_PATH || true)"
lean_sysroot="$("$LAKE" env printenv LEAN_SYSROOT || true)"
[ -n "$lean_path" ] || die "'lake env' does not set LEAN_PATH; the REPL would not find Mathlib"
[ -n "$lean_sysroot" ] || die "'lake env' does not set LEAN_SYSROOT"
echo "  LEAN_SYSROOT=$lean_sysroot"
echo "  LEAN_PATH=$lean_path"
case ":$lean_path:" in
  *"/mathlib/.lake/build/lib:"*) ;;
  *) die "LEAN_PATH from 'lake env' does not include Mathlib's build directory" ;;
esac
# One request without imports: proves the binary starts and answers (no Mathlib load).
reply="$(printf '%s\n\n' '{"cmd": "example : 1 + 1 = 2 := rfl"}' | "$LAKE" env "$REPL_BIN" 2>&1 || true)"
case "$reply" in
  *'"env"'*) say "REPL smoke test ok" ;;
  *) die "REPL smoke test failed; its output was: $(printf '%s' "$reply" | tr '\n' ' ' | cut -c1-300)" ;;
esac

# The toolchain's own lake (not elan's proxy): works without ELAN_HOME/HOME, e.g. in a sandbox.
TOOLCHAIN_LAKE="$("$ELAN" which lake 2>/dev/null || echo "$LAKE")"
cat <<EOF
make lean: done ($ENV_LABEL). Settings for the verifier (real-Lean tests: make test-lean):
# this environment alone:
export PROVER_LEAN_WORKSPACE=$WS
# or next to others, one pool each (requests pick one with lean_env / --lean-env):
# export PROVER_LEAN_ENVS='{"$ENV_LABEL": {"workspace": "$WS"}, ...}'

export PATH="$ELAN_BIN:\$PATH"
# By default the verifier starts $REPL_BIN
# with the variables of 'lake env' (resolved once). To choose the command yourself instead
# (it must start ONE REPL and is run with PROVER_LEAN_WORKSPACE as cwd):
# export PROVER_LEAN_REPL_CMD="$TOOLCHAIN_LAKE env $REPL_BIN"
EOF
