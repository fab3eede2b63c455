# ordermesh — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
ARGS ?=
JOBS ?= 2
SERVICES := orders payments shipping points notify

.PHONY: run test bench evidence docs docs-check lint setup clean

setup:  ## install uv if missing, then the workspace (one lockfile)
	@[ -x "$(UV)" ] || (python3 -m venv .tools && .tools/bin/pip install --quiet uv)
	@$(UV) sync --frozen --quiet

run: setup  ## the whole suite with demo traffic and a live view (Ctrl-C stops everything)
	@$(UV) run --frozen python -m ordermesh_devstack --run-dir .run run $(ARGS)

test: setup  ## every test: unit, integration (real PostgreSQL), end-to-end (real Kafka + PostgreSQL)
	@$(UV) run --frozen pytest -n $(JOBS) --dist loadgroup $(ARGS)

bench: setup  ## end-to-end throughput and latency, then intake alone, with raw aiokafka/asyncpg baselines
	@$(UV) run --frozen python -m ordermesh_devstack.bench $(ARGS)

evidence: setup  ## one stack run with tracing on: one order's logs, `orders trace` and span tree, a dead letter replayed
	@rm -rf .evidence
	@ORDERMESH_EVIDENCE_DIR=$(CURDIR)/.evidence $(UV) run --frozen pytest -q -p no:cacheprovider $(ARGS) \
		"tests/test_tracing.py::test_one_order_is_one_trace_across_the_five_services_exported_over_otlp" \
		"tests/test_dead_letters.py::test_a_card_order_dead_lettered_for_a_shops_unusable_gateway_completes_when_replayed_after_staff_fix_the_settings"
	@for f in .evidence/*.txt; do echo "=== $$f"; cat "$$f"; echo; done

docs: setup  ## AsyncAPI document of each service into asyncapi/ (every channel it reads and writes, deterministic)
	@mkdir -p asyncapi
	@for s in $(SERVICES); do $(UV) run --frozen python -m ordermesh_servicekit.asyncapi ordermesh_$$s.app:create_app --out asyncapi/$$s.json || exit 1; done
	@echo "AsyncAPI documents in asyncapi/"

docs-check: docs  ## fails if the checked-in AsyncAPI documents are stale
	@git diff --exit-code -- asyncapi/ || (echo "asyncapi/ is stale: run 'make docs' and commit" && exit 1)

clean:
	rm -rf .run
