"""The one place where configuration is read.

Every setting comes from a `PROVER_*` environment variable, or from a TOML file (`PROVER_CONFIG`,
else `prover.toml` in the working directory) that may set the same keys; the environment wins.
A bad value stops the program with one line naming the variable, because a mistyped worker count
discovered an hour into an evaluation costs far more than a refusal at start.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_BACKENDS = ("vllm", "openai", "transformers")
SANDBOX_MODES = ("auto", "bwrap", "none")
PROMPT_MODES = ("non-cot", "cot")
DTYPES = ("auto", "bfloat16", "float16", "float32")


class ConfigError(ValueError):
    """A setting has a value the program cannot use; the message names the variable."""


@dataclass(frozen=True)
class LeanEnvSpec:
    """One named Lean environment of `PROVER_LEAN_ENVS`: a Lake workspace with its own pins."""

    name: str
    workspace: Path
    repl_cmd: tuple[str, ...] | None = None  # overrides the workspace's REPL
    workers: int | None = None  # REPL workers of its pool; PROVER_LEAN_WORKERS when unset


@dataclass(frozen=True)
class Settings:
    lean_workspace: Path = REPO_ROOT / "lean_workspace"
    lean_repl_cmd: tuple[str, ...] | None = None
    lean_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    lean_timeout: float = 300.0
    lean_memory_mb: int = 12288
    # Extensions beyond interface.md; same naming scheme.
    lean_header_timeout: float = 900.0
    lean_max_checks: int = 1000
    lean_recycle_mb: int | None = None
    lean_header_cache: int = 8
    lean_sandbox: str = "auto"
    lean_queue: int = 1024
    allow_native_decide: bool = False
    model_backend: str = "vllm"
    model: str = "deepseek-ai/DeepSeek-Prover-V1.5-RL"
    openai_base_url: str | None = None
    # Model backends (extensions beyond interface.md; same naming scheme).
    model_prompt: str = "non-cot"  # DeepSeek-Prover-V1.5's prompt format: non-cot or cot
    model_profile: str = "deepseek-v1.5"  # prover/profiles.py: prompt, answer and correction
    model_dtype: str = "auto"
    model_max_len: int | None = None  # context length; the model's own when unset
    model_tensor_parallel: int = 1
    model_gpu_memory: float = 0.9  # fraction of GPU memory vLLM may take
    model_max_batch: int = 16  # transformers: most sequences in one generate() call
    model_seed: int = 0  # engine seed (vLLM); per-request seeds come from the search
    openai_api_key: str | None = None
    openai_timeout: float = 600.0  # seconds for one /v1/completions request
    openai_max_retries: int = 5
    openai_max_connections: int = 64
    redis_url: str = "redis://localhost:6379/0"
    api_keys: tuple[str, ...] = ()
    # HTTP service and workers (extensions beyond interface.md; same naming scheme).
    server_host: str = "127.0.0.1"
    server_port: int = 8000
    api_rate_limit: int = 600  # requests per minute per API key (per client address without keys)
    api_max_body_kb: int = 1024  # request bodies past this are refused with 413
    verify_concurrency: int | None = None  # /v1/verify checks at once; 4 per Lean worker if unset
    max_budget: int = 100_000  # largest `budget` a /v1/prove request may ask for
    worker_jobs: int = 2  # search jobs one `prover worker` runs at once
    job_claim_idle_s: float = 60.0  # a job unheard of this long is taken over by another worker
    job_ttl_days: float = 30.0  # how long finished jobs and their events are kept
    # Several Lean environments (prover/lean/environments.py); empty: the workspace above alone.
    lean_envs: tuple[LeanEnvSpec, ...] = ()
    lean_default_env: str | None = None
    # Results cache (definitive verdicts by code, statement and Lean environment).
    result_cache_size: int = 100_000  # verdicts kept (per process, or shared in Redis); 0: off
    # Verification at RL scale: batches, the admission queue, oversized uploads.
    max_batch: int = 10_000  # most items in one /v1/verify/batch (or Kimina-style) request
    verify_queue: int = 1000  # checks that may wait for a verify slot, all API keys together
    verify_queue_wait_s: float = 120.0  # a check that would wait longer is refused (503)
    api_max_batch_body_mb: int = 64  # body limit of the batch routes (MiB)
    api_drain_mb: int = 64  # an oversized body is read and dropped up to this past the limit
    # Tactic sessions (prover/lean/tactic_session.py; extensions beyond interface.md).
    tactic_workers: int = 1  # REPL processes leased for tactic sessions, beside the check pool
    tactic_timeout: float = 60.0  # seconds for one tactic; past it the session's REPL restarts
    session_idle_s: float = 600.0  # a tactic session unused this long expires
    sessions_per_key: int = 16  # live tactic sessions one API key (or address) may hold
    # What each REPL may use inside its sandbox (docs/security.md).
    lean_tmp_mb: int = 256  # size of the private /tmp (a tmpfs: it counts as memory)
    lean_file_mb: int = 256  # largest file a REPL may write (RLIMIT_FSIZE)
    lean_processes: int = 512  # processes and threads of one REPL (RLIMIT_NPROC)
    lean_cpu_s: float | None = None  # CPU seconds per check; 2 x PROVER_LEAN_TIMEOUT if unset
    lean_sandbox_uid: int = 2_100_000_000  # first host uid of REPLs when the service is root
    lean_sandbox_bind: tuple[Path, ...] = ()  # more read-only paths a custom REPL needs

    @property
    def verify_slots(self) -> int:
        return self.verify_concurrency or 4 * self.lean_workers

    @property
    def recycle_mb(self) -> int:
        """RSS past which an idle worker is replaced before it nears the hard cap."""
        return self.lean_recycle_mb or int(self.lean_memory_mb * 0.75)

    def cpu_budget(self, timeout: float) -> float:
        """CPU seconds a request with this wall-clock timeout may use: the same share for each."""
        per_check = self.lean_cpu_s or 2 * self.lean_timeout
        return per_check * timeout / self.lean_timeout

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, config_file: Path | None = None
    ) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values = _read_config_file(env, config_file)
        values.update({k: v for k, v in env.items() if k.startswith("PROVER_")})
        return _build(values)


def _read_config_file(env: Mapping[str, str], config_file: Path | None) -> dict[str, str]:
    path = config_file or (Path(env["PROVER_CONFIG"]) if "PROVER_CONFIG" in env else None)
    if path is None:
        default = Path.cwd() / "prover.toml"
        if not default.is_file():
            return {}
        path = default
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"PROVER_CONFIG: no such file {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"PROVER_CONFIG: {path} is not valid TOML: {exc}") from exc
    out: dict[str, str] = {}
    for key, value in data.items():
        name = key.upper() if key.upper().startswith("PROVER_") else "PROVER_" + key.upper()
        if isinstance(value, dict):  # a table, e.g. [lean_envs.v4_9]: the same JSON as the env
            value = json.dumps(value)
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "1" if value else "0"
        out[name] = str(value)
    return out


def _parse(values: Mapping[str, str], name: str, conv: Callable[[str], T], what: str) -> T | None:
    raw = values.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return conv(raw.strip())
    except (ValueError, TypeError):
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError
    return value


def _fraction(raw: str) -> float:
    value = float(raw)
    if not 0 < value <= 1:
        raise ValueError
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError
    return raw.rstrip("/")


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError
    return value


def _redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError
    return raw


def _sandbox_uid(raw: str) -> int:
    value = int(raw)
    if not 1000 <= value <= 4_000_000_000:  # leaves room for the 2**24 uids REPLs draw from
        raise ValueError
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def conv(raw: str) -> str:
        if raw not in options:
            raise ValueError
        return raw

    return conv


def _command(raw: str) -> tuple[str, ...]:
    argv = tuple(shlex.split(raw))
    if not argv:
        raise ValueError
    return argv


_ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_ENV_KEYS = ("workspace", "repl_cmd", "workers")


def _lean_envs(raw: str) -> tuple[LeanEnvSpec, ...]:
    """`{"v4_9": {"workspace": "/srv/lean/v4_9"}, "v4_15": {"workspace": "...", "repl_cmd":
    "..."}}`; every problem is named, with the environment it is in."""
    name_of = "PROVER_LEAN_ENVS"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name_of} must be a JSON object, got {raw!r} ({exc.msg})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{name_of} must be a non-empty JSON object of environments, such as "
                          '{"v4_9": {"workspace": "/srv/lean/v4_9"}}')
    specs = []
    for name, entry in data.items():
        where = f"{name_of}[{name!r}]"
        if not _ENV_NAME.fullmatch(name) or name == "default":
            raise ConfigError(f"{name_of}: {name!r} is not a usable environment name (letters, "
                              "digits, _ . -; `default` is reserved for the default one)")
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object with \"workspace\"")
        unknown = sorted(set(entry) - set(_ENV_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(_ENV_KEYS)})")
        workspace = entry.get("workspace")
        if not isinstance(workspace, str) or not workspace.strip():
            raise ConfigError(f"{where}: \"workspace\" must be the Lake project's directory")
        cmd = entry.get("repl_cmd")
        repl_cmd: tuple[str, ...] | None = None
        if cmd is not None:
            if isinstance(cmd, str) and cmd.strip():
                repl_cmd = tuple(shlex.split(cmd))
            elif isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd):
                repl_cmd = tuple(cmd)
            else:
                raise ConfigError(f"{where}: \"repl_cmd\" must be a command line (a string or "
                                  "a list of strings)")
        workers = entry.get("workers")
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                    or workers <= 0):
            raise ConfigError(f"{where}: \"workers\" must be a positive integer")
        specs.append(LeanEnvSpec(name, Path(workspace).expanduser().resolve(), repl_cmd,
                                 workers))
    return tuple(specs)


def _build(values: Mapping[str, str]) -> Settings:
    d = Settings()
    kwargs: dict[str, Any] = {}

    def put(attr: str, name: str, conv: Callable[[str], Any], what: str) -> None:
        parsed = _parse(values, name, conv, what)
        if parsed is not None:
            kwargs[attr] = parsed

    put("lean_workspace", "PROVER_LEAN_WORKSPACE", lambda s: Path(s).expanduser().resolve(),
        "a directory")
    put("lean_repl_cmd", "PROVER_LEAN_REPL_CMD", _command, "a command line")
    put("lean_workers", "PROVER_LEAN_WORKERS", _positive_int, "a positive integer")
    put("lean_timeout", "PROVER_LEAN_TIMEOUT", _positive_float, "a positive number of seconds")
    put("lean_memory_mb", "PROVER_LEAN_MEMORY_MB", _positive_int, "a positive integer (MB)")
    put("lean_header_timeout", "PROVER_LEAN_HEADER_TIMEOUT", _positive_float,
        "a positive number of seconds")
    put("lean_max_checks", "PROVER_LEAN_MAX_CHECKS", _positive_int, "a positive integer")
    put("lean_recycle_mb", "PROVER_LEAN_RECYCLE_MB", _positive_int, "a positive integer (MB)")
    put("lean_header_cache", "PROVER_LEAN_HEADER_CACHE", _positive_int, "a positive integer")
    put("lean_sandbox", "PROVER_LEAN_SANDBOX", _choice(SANDBOX_MODES),
        "one of " + ", ".join(SANDBOX_MODES))
    put("lean_queue", "PROVER_LEAN_QUEUE", _positive_int, "a positive integer")
    put("allow_native_decide", "PROVER_ALLOW_NATIVE_DECIDE", _bool, "true or false")
    put("model_backend", "PROVER_MODEL_BACKEND", _choice(MODEL_BACKENDS),
        "one of " + ", ".join(MODEL_BACKENDS))
    put("model", "PROVER_MODEL", str, "a model name or path")
    put("openai_base_url", "PROVER_OPENAI_BASE_URL", _url, "an http(s):// URL")
    put("model_prompt", "PROVER_MODEL_PROMPT", _choice(PROMPT_MODES),
        "one of " + ", ".join(PROMPT_MODES))
    from prover.profiles import PROFILE_NAMES  # here: profiles build on modules that use Settings

    put("model_profile", "PROVER_MODEL_PROFILE", _choice(PROFILE_NAMES),
        "one of " + ", ".join(PROFILE_NAMES))
    put("model_dtype", "PROVER_MODEL_DTYPE", _choice(DTYPES), "one of " + ", ".join(DTYPES))
    put("model_max_len", "PROVER_MODEL_MAX_LEN", _positive_int, "a positive integer (tokens)")
    put("model_tensor_parallel", "PROVER_MODEL_TENSOR_PARALLEL", _positive_int,
        "a positive integer (GPUs)")
    put("model_gpu_memory", "PROVER_MODEL_GPU_MEMORY", _fraction, "a number in (0, 1]")
    put("model_max_batch", "PROVER_MODEL_MAX_BATCH", _positive_int, "a positive integer")
    put("model_seed", "PROVER_MODEL_SEED", int, "an integer")
    put("openai_api_key", "PROVER_OPENAI_API_KEY", str, "a key")
    put("openai_timeout", "PROVER_OPENAI_TIMEOUT", _positive_float,
        "a positive number of seconds")
    put("openai_max_retries", "PROVER_OPENAI_MAX_RETRIES", _non_negative_int,
        "a non-negative integer")
    put("openai_max_connections", "PROVER_OPENAI_MAX_CONNECTIONS", _positive_int,
        "a positive integer")
    put("redis_url", "PROVER_REDIS_URL", _redis_url, "a redis:// URL")
    put("server_host", "PROVER_SERVER_HOST", str, "a host name or address")
    put("server_port", "PROVER_SERVER_PORT", _port, "a port number (1-65535)")
    put("api_rate_limit", "PROVER_API_RATE_LIMIT", _positive_int,
        "a positive integer (requests per minute)")
    put("api_max_body_kb", "PROVER_API_MAX_BODY_KB", _positive_int, "a positive integer (KiB)")
    put("verify_concurrency", "PROVER_VERIFY_CONCURRENCY", _positive_int, "a positive integer")
    put("max_budget", "PROVER_MAX_BUDGET", _positive_int, "a positive integer")
    put("worker_jobs", "PROVER_WORKER_JOBS", _positive_int, "a positive integer")
    put("job_claim_idle_s", "PROVER_JOB_CLAIM_IDLE_S", _positive_float,
        "a positive number of seconds")
    put("job_ttl_days", "PROVER_JOB_TTL_DAYS", _positive_float, "a positive number of days")
    put("result_cache_size", "PROVER_RESULT_CACHE_SIZE", _non_negative_int,
        "a non-negative integer (0 turns the cache off)")
    put("max_batch", "PROVER_MAX_BATCH", _positive_int, "a positive integer")
    put("verify_queue", "PROVER_VERIFY_QUEUE", _non_negative_int, "a non-negative integer")
    put("verify_queue_wait_s", "PROVER_VERIFY_QUEUE_WAIT_S", _positive_float,
        "a positive number of seconds")
    put("api_max_batch_body_mb", "PROVER_API_MAX_BATCH_BODY_MB", _positive_int,
        "a positive integer (MiB)")
    put("api_drain_mb", "PROVER_API_DRAIN_MB", _non_negative_int, "a non-negative integer (MiB)")
    put("tactic_workers", "PROVER_TACTIC_WORKERS", _positive_int, "a positive integer")
    put("tactic_timeout", "PROVER_TACTIC_TIMEOUT", _positive_float,
        "a positive number of seconds")
    put("session_idle_s", "PROVER_SESSION_IDLE_S", _positive_float,
        "a positive number of seconds")
    put("sessions_per_key", "PROVER_SESSIONS_PER_KEY", _positive_int, "a positive integer")
    put("lean_tmp_mb", "PROVER_LEAN_TMP_MB", _positive_int, "a positive integer (MB)")
    put("lean_file_mb", "PROVER_LEAN_FILE_MB", _positive_int, "a positive integer (MB)")
    put("lean_processes", "PROVER_LEAN_PROCESSES", _positive_int, "a positive integer")
    put("lean_cpu_s", "PROVER_LEAN_CPU_S", _positive_float, "a positive number of CPU seconds")
    put("lean_sandbox_uid", "PROVER_LEAN_SANDBOX_UID", _sandbox_uid,
        "a uid between 1000 and 4000000000")
    put("lean_sandbox_bind", "PROVER_LEAN_SANDBOX_BIND",
        lambda s: tuple(Path(p).expanduser().resolve() for p in s.split(":") if p.strip()),
        "absolute paths separated by ':'")
    put("api_keys", "PROVER_API_KEYS",
        lambda s: tuple(k.strip() for k in s.split(",") if k.strip()), "comma-separated keys")
    raw_envs = values.get("PROVER_LEAN_ENVS")
    if raw_envs is not None and raw_envs.strip():
        kwargs["lean_envs"] = _lean_envs(raw_envs.strip())
    put("lean_default_env", "PROVER_LEAN_DEFAULT_ENV", str, "an environment name")
    settings = replace(d, **kwargs)
    if settings.lean_envs and settings.lean_default_env is not None:
        names = [e.name for e in settings.lean_envs]
        if settings.lean_default_env not in names:
            raise ConfigError(f"PROVER_LEAN_DEFAULT_ENV={settings.lean_default_env!r} is not in "
                              f"PROVER_LEAN_ENVS (known: {', '.join(names)})")
    if settings.lean_recycle_mb is not None and settings.lean_recycle_mb > settings.lean_memory_mb:
        raise ConfigError(
            "PROVER_LEAN_RECYCLE_MB must not exceed PROVER_LEAN_MEMORY_MB "
            f"({settings.lean_recycle_mb} > {settings.lean_memory_mb})"
        )
    return settings
