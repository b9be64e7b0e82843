# Thin wrapper over CMake. `make` builds, `make test` runs the suite, `make demo` runs the
# default drill, `make bench` runs the benchmarks. Each installs missing packages first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps test-deps configure build test demo bench format lint clean

all: build

deps:
	@bash scripts/install-deps.sh

# The suite also needs qemu (tests/vm: netem under a real kernel) and chromium (HTML report
# screenshots); without them those tests skip with the reason.
test-deps:
	@bash scripts/install-deps.sh --vm --report

$(BUILD_DIR)/build.ninja: CMakeLists.txt | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: test-deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600 $(CTEST_ARGS)

# The default drill against the embedded reference service (no root needed, about 90 s).
# Exit 1 (an SLO failed) still shows a report; 2-4 mean the drill could not run properly.
demo: build
	$(BUILD_DIR)/chaosdrill validate scenarios/library/*.yaml
	@$(BUILD_DIR)/chaosdrill run --report-dir reports/out scenarios/library/demo.yaml; \
	  rc=$$?; [ $$rc -le 1 ] || { echo "make demo: the drill did not complete (exit $$rc)"; exit $$rc; }

# Benchmarks against peers, side by side (bench/README.md); numbers go to docs/benchmarks.md.
bench: build
	@bash scripts/install-deps.sh --bench
	$(BUILD_DIR)/bench/inject_latency --iterations 200
	$(BUILD_DIR)/bench/agent_rpc --iterations 1000
	$(BUILD_DIR)/bench/proxy_bench
	$(BUILD_DIR)/bench/tiny_mlp_bench 200
	$(BUILD_DIR)/bench/loadgen

format:
	git ls-files '*.h' '*.cc' '*.cu' | xargs clang-format -i

# clang-format check and the short .clang-tidy list over our sources (needs a configured build).
lint: configure
	git ls-files '*.h' '*.cc' '*.cu' | xargs clang-format --dry-run --Werror
	git ls-files '*.cc' | grep -vE '^(tests|bench)/' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR)
