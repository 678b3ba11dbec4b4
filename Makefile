# Weft top-level Makefile: every target first runs scripts/setup.sh, which installs
# missing Debian packages (quick when all are present).
#   make          Release build -> build/weft
#   make test     unit + language + docs tests (Release), then ASan+UBSan and TSan builds
#   make run      the main job: examples/doc_index.weft indexes /usr/share/doc into doc-index.db
#   make bench    benchmarks side by side with Lua 5.4, CPython, Go
JOBS ?= $(shell nproc)
CMAKE_GEN := -G Ninja

.PHONY: all setup build test test-release test-install test-asan test-tsan run bench clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B build $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)

test: test-release test-install test-asan test-tsan
	@echo "make test: all suites passed"

test-release: build
	@cd build && ctest --output-on-failure -j $(JOBS) --timeout 600

# The installed embedding package, as a host sees it: libweft.so.0 needs every layer compiled
# position-independent, so it has its own build dir in which only the library is built (72
# objects: seconds when ccache has them, a few minutes on 2 cores when it has not); then
# tests/unit/embed/install_test.sh installs it into two prefixes, checks that they are identical
# and relocatable and that only weft::api is exported, and builds every examples/embed/ program
# against the moved prefix with pkg-config and with find_package(Weft) and runs it (~15 s).
test-install: setup
	@cmake -S . -B build-shared $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DWEFT_SHARED=ON -DWEFT_BENCH=OFF >/dev/null
	@cmake --build build-shared -j $(JOBS) --target weft_shared
	@cd build-shared && ctest --output-on-failure --timeout 600 -R '^embed\.install$$'

# ASan+UBSan: the language, docs, CLI and PostgreSQL tests (the whole VM, compiler and standard
# library under the sanitizers), the runtime's suite and the embedding API's. The other layers' unit tests
# run in the Release job; building them again here would double CI time for little.
EMBED_TARGETS := weft_embed_tests embed_example_hello embed_example_host_functions embed_example_control \
                 embed_example_run_program
ASAN_TARGETS := weft weft_runtime_tests $(EMBED_TARGETS) weft_fuzz_smoke
test-asan: setup
	@cmake -S . -B build-asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address -DWEFT_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS) --target $(ASAN_TARGETS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS) --timeout 900 \
		-R '^(lang|lang\.concurrency|docs|cli|postgres|fuzz\.frontend_smoke|security\..*|runtime\..*|embed\..*)$$'

# ThreadSanitizer: the runtime's and embedding API's suites, the language's concurrency tests and the servers (net,
# http.serve) on four worker threads, and db.postgres (the concurrent parts of the system).
test-tsan: setup
	@cmake -S . -B build-tsan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread -DWEFT_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS) --target weft_runtime_tests $(EMBED_TARGETS) weft
	@cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest --output-on-failure -j $(JOBS) --timeout 900 -R '^(runtime.*|embed\..*|lang\.concurrency|lang\.actors|lang\.servers|postgres)$$'

# The main job: index ROOT (default /usr/share/doc) into the SQLite database DB (default
# doc-index.db), `make run ARGS="ROOT [DB]"`. It gets exactly the capabilities it needs: read
# ROOT and DB (SQLite reads the file it writes), write DB; nothing else.
RUN_ROOT = $(or $(word 1,$(ARGS)),/usr/share/doc)
RUN_DB = $(or $(word 2,$(ARGS)),doc-index.db)
# Only the weft target: a fresh clone need not build every unit-test binary to run the job
# (`make` and `make test` still build everything).
run: setup
	@cmake -S . -B build $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS) --target weft
	@./build/weft --allow-read=$(RUN_ROOT),$(RUN_DB) --allow-write=$(RUN_DB) \
		run examples/doc_index.weft $(RUN_ROOT) $(RUN_DB)

bench: setup
	@bash scripts/setup.sh --bench
	@cmake -S . -B build $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j $(JOBS)
	@python3 bench/run.py

clean:
	rm -rf build build-asan build-tsan build-shared
