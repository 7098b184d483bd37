# The two commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint unit bench models clean

# Set-up goes to stderr: `make demo`'s stdout is the alerts, one JSON object per line,
# from the first run on a fresh machine too.
$(BIN)/python:
	@echo "make: creating $(VENV) with $(PYTHON)" >&2
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "edgepipe needs Python >= 3.11"'
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install -q --upgrade pip >&2

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	@echo "make: installing edgepipe into $(VENV)" >&2
	@$(BIN)/python -m pip install -q -e . >&2
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.runtime $(VENV)/.andes

demo: $(VENV)/.runtime
	@$(BIN)/edgepipe demo $(if $(DURATION),--duration $(DURATION),)

lint: $(VENV)/.test
	$(BIN)/ruff check edgepipe adapters tests tools
	$(BIN)/ruff format --check edgepipe adapters tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	tools/check-systemd-unit.sh

unit: $(VENV)/.test
	$(BIN)/pytest -m "not integration"

test: $(VENV)/.test
	@# real parts, never skipped: a mosquitto broker (the tests start their own; Debian
	@# also starts the packaged service) and a headless Chromium for the report test
	tools/ensure-tool.sh mosquitto "the tests need the MQTT broker mosquitto" mosquitto /usr/sbin/mosquitto
	tools/ensure-tool.sh chromium "the report test needs a headless Chromium" chromium chromium-browser
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

# Every benchmark runs even when one reports a target missed (exit 1); make lists them.
bench: $(VENV)/.test
	-$(BIN)/python tools/bench_codec.py
	-$(BIN)/python tools/bench_pipeline_stages.py
	-$(BIN)/python tools/bench_inference.py
	-$(BIN)/python tools/bench_e2e.py
	-$(BIN)/python tools/bench_replay.py
	-$(BIN)/python tools/bench_modbus.py
	-$(BIN)/python tools/bench_opcua.py
	-$(BIN)/python tools/bench_outbox.py

$(VENV)/.andes: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[andes]'
	touch $@

models: $(VENV)/.test $(VENV)/.andes
	$(BIN)/python tools/train_starter.py
	$(BIN)/python tools/train_transformer_anomaly.py  # after the starter: it merges into the manifest
	rm -rf data/scenarios  # from scratch: ANDES scenarios (~35 min on 2 cores), then the event models
	$(BIN)/python tools/scenarios/generate.py --out data/scenarios --jobs 2
	$(BIN)/python tools/train_events.py --data data/scenarios  # merges into the manifest
	$(BIN)/python tools/event_soak.py > models/cards/soak-kundur.txt  # false alarms over 24.6 simulated hours

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build *.egg-info
