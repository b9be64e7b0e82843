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

demo: build
	$(BUILD_DIR)/chaosdrill validate scenarios/library/*.yaml

bench: build
	@echo "make bench: no benchmarks yet (see bench/README.md)"

format:
	git ls-files '*.h' '*.cc' '*.cu' | xargs clang-format -i

# clang-format check and the short .clang-tidy list over our sources (needs a configured build).
lint: configure
	git ls-files '*.h' '*.cc' '*.cu' | xargs clang-format --dry-run --Werror
	git ls-files '*.cc' | grep -vE '^(tests|bench)/' | xargs clang-tidy -p $(BUILD_DIR) --quiet

clean:
	rm -rf $(BUILD_DIR)
