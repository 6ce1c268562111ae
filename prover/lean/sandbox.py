"""What a REPL sees of the host and what it may do there: the bubblewrap command line.

Lean runs a proof's code (`#eval`, tactics, `run_cmd`) with the REPL's rights, and its messages go
back to API clients, so whatever the REPL can read can leak. The sandbox therefore starts from an
empty file system and binds, read-only, only what the REPL command needs, derived from the command
itself: the programs it names (with their symlinks, a script's interpreter, a venv and its base
Python), the files it names, the Lean toolchain and the workspace with its `.lake`, the system
libraries and the loader's cache. Home directories, /etc (beyond ld.so.cache and a synthesized
passwd/group), the project's configuration, sockets and keys are never bound. Inside: an
unprivileged uid, no capabilities, no network, its own PID namespace and session, a size-capped
private /tmp, and caps on processes and file size (prlimit). See docs/security.md.

Two ways to get an unprivileged uid. A service running as a normal user runs bubblewrap in a user
namespace of its own (`--unshare-user --uid`). A service running as root cannot: the namespace would
map the REPL to host uid 0, for which the kernel ignores RLIMIT_NPROC. So as root, bubblewrap
builds the sandbox with root's rights (it can bind what root can read) and `setpriv` then drops to
a host uid of the REPL's own, drawn per process from `PROVER_LEAN_SANDBOX_UID` on, with every
capability gone.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from prover.config import REPO_ROOT, Settings
from prover.lean.limits import Caps

SANDBOX_UID = 1000  # the REPL's uid and gid inside a user namespace
SANDBOX_HOSTNAME = "lean"  # what uname and /proc/sys/kernel/hostname show the REPL
UID_SPAN = 2**24  # host uids REPLs draw from when the service is root
_LIB_DIRS = ("lib", "lib64", "lib32", "libx32")
_PATH_VARS = ("LEAN_SYSROOT", "LEAN_PATH", "LEAN_SRC_PATH", "LD_LIBRARY_PATH")  # from `lake env`
_PROBE_S = 20
_IDENTITY_PREFIX = "prover-sandbox-etc-"


class SandboxError(RuntimeError):
    """A restriction cannot be applied here; the message names it and says what to do."""


def _never_bound() -> list[Path]:
    """Directories that must not be bound whole: they hold other users' and the service's files."""
    roots = [Path(p) for p in ("/", "/etc", "/run", "/var", "/tmp", "/home", "/proc", "/sys",
                               "/dev", "/usr", "/boot", "/srv", "/mnt", "/media")]
    roots += [REPO_ROOT, Path.home()]
    for entry in pwd.getpwall():
        home = Path(entry.pw_dir)
        if home.is_absolute() and str(home) not in ("/", "/nonexistent") and home.is_dir():
            roots.append(home)
    return roots


def _check_bindable(path: Path, why: str) -> None:
    for guarded in _never_bound():
        if guarded == path or guarded.is_relative_to(path):
            raise SandboxError(
                f"the sandbox would show all of {path} ({why}), which holds {guarded}: point it "
                "at a narrower directory (the Lean workspace or toolchain itself)"
            )


def _which(name: str, path_var: str | None) -> Path | None:
    found = shutil.which(name, path=path_var)
    return Path(os.path.abspath(found)) if found else None


def _symlink_chain(path: Path) -> list[Path]:
    """The path, each link it goes through, and where it ends."""
    chain = [path]
    current = path
    for _ in range(40):
        if not current.is_symlink():
            break
        current = Path(os.path.normpath(current.parent / os.readlink(current)))
        chain.append(current)
    real = path.resolve()
    if real not in chain:
        chain.append(real)
    return chain


def _python_install(prefix: Path) -> list[Path]:
    """A Python installation's standard library (and libpython), if `prefix` holds one."""
    out = []
    for lib in _LIB_DIRS:
        out += sorted((prefix / lib).glob("python3*"))
        out += sorted((prefix / lib).glob("libpython3*"))
    return out


def program_paths(program: Path, path_var: str | None, depth: int = 0) -> list[Path]:
    """Everything a program needs beyond the system libraries: its links, its interpreter, its
    venv and base Python."""
    paths = _symlink_chain(program)
    real = paths[-1]
    for prefix in {program.parent.parent, real.parent.parent}:
        config = prefix / "pyvenv.cfg"
        if config.is_file():
            paths.append(prefix)
            for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    paths += _python_install(Path(value.strip()).parent)
        if real.name.startswith("python"):
            paths += _python_install(prefix)
    head = b""
    if depth < 2 and real.is_file():
        with contextlib.suppress(OSError), open(real, "rb") as f:
            head = f.read(256)
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n")[0].decode("utf-8", "replace").split()
        if words:
            interpreter = Path(words[0])
            paths += program_paths(interpreter, path_var, depth + 1)
            if interpreter.name == "env" and len(words) > 1:
                target = _which(words[1], path_var)
                if target is not None:
                    paths += program_paths(target, path_var, depth + 1)
    return paths


def command_paths(argv: Sequence[str], cwd: Path, path_var: str | None) -> list[Path]:
    """The files and directories a REPL command line names: its program (through `env` too) and
    every argument that is an existing path."""
    out: list[Path] = []
    programs = [argv[0]]
    if Path(argv[0]).name == "env":
        rest = [a for a in argv[1:] if "=" not in a and not a.startswith("-")]
        programs += rest[:1]
    for name in programs:
        found = Path(name) if "/" in name else _which(name, path_var)
        if found is not None:
            found = found if found.is_absolute() else cwd / found
            if found.exists():
                out += program_paths(Path(os.path.normpath(found)), path_var)
    for arg in argv[1:]:
        if arg in programs or "=" in arg or arg.startswith("-"):
            continue
        candidate = Path(arg) if Path(arg).is_absolute() else cwd / arg
        if _exists(candidate):
            out.append(Path(os.path.normpath(candidate)))
    return out


def _exists(path: Path) -> bool:
    """Whether an argument names an existing path (code passed with -c is not one)."""
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def toolchain_paths(env: Mapping[str, str]) -> list[Path]:
    """The Lean toolchain and package directories that `lake env` points the REPL at."""
    out = []
    for name in _PATH_VARS:
        for part in env.get(name, "").split(":"):
            if part and Path(part).is_absolute() and Path(part).exists():
                out.append(Path(part))
    return out


@functools.lru_cache(maxsize=1)
def _identity_dir() -> Path:
    """A passwd and group naming only root and the REPL's user, bound over the host's."""
    _sweep_identity_dirs()
    directory = Path(tempfile.mkdtemp(prefix=f"{_IDENTITY_PREFIX}{os.getpid()}-"))
    directory.chmod(0o755)
    (directory / "passwd").write_text(
        "root:x:0:0:root:/:/usr/sbin/nologin\n"
        f"lean:x:{SANDBOX_UID}:{SANDBOX_UID}:Lean REPL:/tmp:/usr/sbin/nologin\n"
    )
    (directory / "group").write_text(f"root:x:0:\nlean:x:{SANDBOX_UID}:\n")
    for name in ("passwd", "group"):
        (directory / name).chmod(0o644)
    atexit.register(shutil.rmtree, directory, True)
    return directory


def _sweep_identity_dirs() -> None:
    """Remove the passwd/group directories of this user's processes that died without cleaning
    up (killed: atexit does not run)."""
    for stale in Path(tempfile.gettempdir()).glob(f"{_IDENTITY_PREFIX}*"):
        pid = stale.name.removeprefix(_IDENTITY_PREFIX).split("-")[0]
        with contextlib.suppress(OSError, ValueError):
            if stale.stat().st_uid == os.geteuid() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)


def _minimal(paths: Iterable[Path]) -> list[Path]:
    """Sorted, without duplicates and without paths inside another one already listed."""
    kept: list[Path] = []
    for path in sorted(set(paths), key=lambda p: (len(p.parts), str(p))):
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return sorted(kept)


@dataclass(frozen=True)
class Sandbox:
    """A bubblewrap command line for one REPL command; `argv()` gives a fresh one per process."""

    bwrap: str
    prlimit: str
    setpriv: str | None  # set when the service is root: the uid drop happens inside
    binds: tuple[Path, ...]
    cwd: Path
    env: Mapping[str, str]
    caps: Caps
    tmp_bytes: int
    uid_base: int

    @property
    def privileged(self) -> bool:
        return self.setpriv is not None

    def restrictions(self, uid: int) -> list[tuple[str, list[str], list[str]]]:
        """(name, bubblewrap options, command prefix) of each restriction beyond the file system
        view, in the order the probe adds them; together they are the sandbox."""
        if self.privileged:
            assert self.setpriv is not None
            out: list[tuple[str, list[str], list[str]]] = [(
                f"an unprivileged uid of its own ({uid}) without capabilities (setpriv)", [],
                [self.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"],
            )]
        else:
            out = [
                ("a user namespace with an unprivileged uid and gid (--unshare-user --uid --gid)",
                 ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)], []),
                ("no capabilities (--cap-drop ALL)", ["--cap-drop", "ALL"], []),
            ]
        out += [
            ("no network (--unshare-net)", ["--unshare-net"], []),
            ("a PID namespace of its own (--unshare-pid --proc)",
             ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
              "--proc", "/proc"], []),
            # a UTS namespace copies the host's name, which may name the machine or the cluster
            (f"a host name of its own (--hostname {SANDBOX_HOSTNAME})",
             ["--hostname", SANDBOX_HOSTNAME], []),
            ("a new session (--new-session)", ["--new-session"], []),
            (f"a private /tmp of {self.tmp_bytes // 2**20} MB (--size --tmpfs)", self._tmp(), []),
            ("a read-only root and /dev (--remount-ro)",
             ["--remount-ro", "/", "--remount-ro", "/dev"], []),
            (f"caps of {self.caps.processes} processes and {self.caps.file_bytes // 2**20} MB "
             "files (prlimit)", [], self.caps.prlimit_argv(self.prlimit)),
        ]
        if not self.privileged:
            out.append(("no nested user namespaces (--disable-userns)",
                        ["--disable-userns"], []))
        return out

    def _dirs_for(self, path: Path, made: set[Path]) -> list[str]:
        """Create the parents of a bind point readable by all (bubblewrap makes them 0700)."""
        flags = []
        for parent in reversed(path.parents):
            if parent != Path("/") and parent not in made:
                made.add(parent)
                flags += ["--perms", "0755", "--dir", str(parent)]
        return flags

    def _view(self) -> list[str]:
        made: set[Path] = set()
        flags: list[str] = []
        for name in (*_LIB_DIRS, "bin"):
            top = Path("/") / name
            if top.is_symlink():
                flags += ["--symlink", os.readlink(top), str(top)]
            elif top.is_dir() and name != "bin":
                flags += ["--ro-bind", str(top), str(top)]
        system = [Path("/usr") / name for name in _LIB_DIRS]
        system = [p for p in system if p.is_dir() and not p.is_symlink()]
        ident = _identity_dir()
        files = [(Path("/etc/ld.so.cache"), Path("/etc/ld.so.cache")),
                 (ident / "passwd", Path("/etc/passwd")), (ident / "group", Path("/etc/group"))]
        tools = [Path(self.prlimit)] + ([Path(self.setpriv)] if self.setpriv else [])
        outside_tmp = _minimal([*system, *tools, *self._host_binds(tmp=False)])
        for path in outside_tmp:
            flags += [*self._dirs_for(path, made), "--ro-bind", str(path), str(path)]
        for source, dest in files:
            if source.exists():
                flags += [*self._dirs_for(dest, made), "--ro-bind", str(source), str(dest)]
        return [*flags, "--dev", "/dev"]

    def _host_binds(self, *, tmp: bool) -> list[Path]:
        return [p for p in self.binds if p.is_relative_to("/tmp") == tmp]

    def _tmp(self) -> list[str]:
        flags = ["--size", str(self.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
        made: set[Path] = {Path("/tmp")}
        for path in _minimal(self._host_binds(tmp=True)):
            flags += [*self._dirs_for(path, made), "--ro-bind", str(path), str(path)]
        return flags

    def _fresh_uid(self) -> int:
        """A host uid for one REPL process: RLIMIT_NPROC counts per uid, so each gets its own.
        Drawn at random from 2**24: two live REPLs rarely meet, and then only share that cap."""
        return self.uid_base + random.randrange(UID_SPAN)

    def argv(self, command: Sequence[str]) -> tuple[str, ...]:
        uid = self._fresh_uid() if self.privileged else SANDBOX_UID
        return self._assemble(self.restrictions(uid), command)

    def _assemble(
        self, parts: list[tuple[str, list[str], list[str]]], command: Sequence[str]
    ) -> tuple[str, ...]:
        flags: list[str] = [self.bwrap, "--die-with-parent", *self._view()]
        prefix: list[str] = []
        for _, options, wrapper in parts:
            flags += options
            prefix += wrapper
        flags += ["--chdir", str(self.cwd), "--clearenv"]
        for key, value in sorted(self.env.items()):
            flags += ["--setenv", key, value]
        return (*flags, "--", *prefix, *command)

    def probe(self) -> None:
        """Run a do-nothing command under every restriction; if that fails, add them one at a
        time and raise `SandboxError` naming the first that bubblewrap cannot apply."""
        command = [self.prlimit, "--version"]
        parts = self.restrictions(self.uid_base)
        error = _runs(self._assemble(parts, command))
        if error is None:
            return
        for i in range(len(parts) + 1):
            error = _runs(self._assemble(parts[:i], command))
            if error is not None:
                what = parts[i - 1][0] if i else "the file system view (read-only binds)"
                raise SandboxError(f"bubblewrap cannot apply {what}: {error}")
        raise SandboxError(f"bubblewrap fails only with every restriction at once: {error}")


def _runs(argv: Sequence[str]) -> str | None:
    """None when the command exits 0; otherwise what went wrong."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_S,
                              stdin=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return (done.stderr.strip() or f"exit status {done.returncode}")[-500:]


def build_sandbox(
    settings: Settings, argv: Sequence[str], cwd: Path, env: Mapping[str, str],
    toolchain_env: Mapping[str, str],
) -> Sandbox:
    """The sandbox for one REPL command, or `SandboxError` when a needed tool is missing or a
    path it would bind would expose a home directory or the project."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap is not installed (install the `bubblewrap` package)")
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise SandboxError("prlimit (util-linux) is not installed: it sets the process and "
                           "file-size caps inside the sandbox")
    setpriv = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxError("setpriv (util-linux) is not installed: as root, the REPL drops "
                               "to an unprivileged uid with it")
    path_var = env.get("PATH")
    named = [(p, "named by PROVER_LEAN_REPL_CMD") for p in command_paths(argv, cwd, path_var)]
    named += [(p, "from `lake env`") for p in toolchain_paths(toolchain_env)]
    named += [(p, "PROVER_LEAN_SANDBOX_BIND") for p in settings.lean_sandbox_bind]
    named.append((cwd, "PROVER_LEAN_WORKSPACE"))
    for path, why in named:
        _check_bindable(path, why)
    return Sandbox(
        bwrap=bwrap, prlimit=prlimit, setpriv=setpriv,
        binds=tuple(_minimal(p for p, _ in named if p.exists())), cwd=cwd, env=dict(env),
        caps=Caps(settings.lean_processes, settings.lean_file_mb * 2**20),
        tmp_bytes=settings.lean_tmp_mb * 2**20, uid_base=settings.lean_sandbox_uid,
    )
