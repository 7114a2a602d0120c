# slabdefrag — the two commands: `make demo` (the main job) and `make test` (every test).
# Everything else is a convenience over CMake.
JOBS    ?= $(shell nproc)
BUILD   ?= build
CMAKE_FLAGS ?=

.PHONY: all build deps demo test test-asan test-tsan bench stress fuzz install clean

all: build

deps:
	@scripts/install-deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLABDEFRAG_BUFCACHE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: deps build
	$(BUILD)/tools/slabdefrag demo

test: deps
	@$(MAKE) --no-print-directory build BUILD=$(BUILD) CMAKE_FLAGS="-DSLABDEFRAG_WERROR=ON"
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 300

test-asan: deps
	@$(MAKE) --no-print-directory build BUILD=build-asan \
	  CMAKE_FLAGS="-DSLABDEFRAG_WERROR=ON -DSLABDEFRAG_SANITIZE=address -DSLABDEFRAG_BENCH=OFF -DCMAKE_C_COMPILER=clang"
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 600 -LE "nosan|preload"

# die_after_fork=0: the library runs a purge thread, so tests that fork to catch
# an abort fork a multi-threaded process, and some children start threads.
test-tsan: deps
	@$(MAKE) --no-print-directory build BUILD=build-tsan \
	  CMAKE_FLAGS="-DSLABDEFRAG_WERROR=ON -DSLABDEFRAG_SANITIZE=thread -DSLABDEFRAG_BENCH=OFF -DCMAKE_C_COMPILER=clang"
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0 \
	  ctest --output-on-failure -j$(JOBS) --timeout 600 -LE "nosan|preload"

bench: deps build
	bench/run.sh $(BUILD)

stress: deps build
	cd $(BUILD) && SLABDEFRAG_STRESS_SECONDS=$${SECONDS_PER_TEST:-60} ctest --output-on-failure -L stress

fuzz: deps
	@$(MAKE) --no-print-directory build BUILD=build-fuzz \
	  CMAKE_FLAGS="-DCMAKE_C_COMPILER=clang -DSLABDEFRAG_FUZZ=ON -DSLABDEFRAG_BENCH=OFF"
	fuzz/run.sh build-fuzz $${FUZZ_SECONDS:-60}

install: build
	cmake --install $(BUILD)

clean:
	rm -rf build build-asan build-tsan build-fuzz
