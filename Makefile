# Two commands for a newcomer: `make demo` (the main job on the embedded default) and
# `make test` (quality gates + the whole test suite). Each creates .venv and installs what it
# needs by itself, pinned by constraints.txt.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLIENT_PROTO := src/sfsync/connectors/salesforce/pubsub_proto

.PHONY: install demo test lint unit fmt bench lock clean proto

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/sfsync demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
unit: $(STAMP)
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test: lint unit

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Regenerate the emulator's Pub/Sub API gRPC modules (checked in) from its .proto. The messages
# go to a private descriptor pool: a process may also load Salesforce's own generated
# eventbus.v1 classes (a client), which would clash in the default pool.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Isrc --python_out=src --pyi_out=src --grpc_python_out=src \
		src/sfsync/emulator/streaming/proto/pubsub_api.proto
	sed -i 's/^DESCRIPTOR = _descriptor_pool.Default()/DESCRIPTOR = _descriptor_pool.DescriptorPool()/' \
		src/sfsync/emulator/streaming/proto/pubsub_api_pb2.py
	# The Salesforce connector's own client modules, from the same .proto (the public
	# contract), in a package of their own: the connector never imports the emulator.
	$(BIN)/python -m grpc_tools.protoc -Isrc/sfsync/emulator/streaming/proto \
		--python_out=$(CLIENT_PROTO) --pyi_out=$(CLIENT_PROTO) --grpc_python_out=$(CLIENT_PROTO) \
		src/sfsync/emulator/streaming/proto/pubsub_api.proto
	sed -i 's/^DESCRIPTOR = _descriptor_pool.Default()/DESCRIPTOR = _descriptor_pool.DescriptorPool()/' \
		$(CLIENT_PROTO)/pubsub_api_pb2.py
	sed -i 's/^import pubsub_api_pb2 as/from . import pubsub_api_pb2 as/' $(CLIENT_PROTO)/pubsub_api_pb2_grpc.py

# What the benchmarks need beyond the test tools (pandas for the comparison script).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	@ls bench/*.py | sed 's|^|  $(BIN)/python |; s|$$| --help|'

# Regenerate the pinned versions after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^sfsync' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
