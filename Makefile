# The front door. Two commands do everything on a fresh Debian 12 machine:
#   make demo   installs what is missing, builds, runs the main example
#   make test   installs what is missing, builds release and ASan+UBSan, runs every test, the
#               libFuzzer targets (clang, build-fuzz) and the install check
# Anything else: meson/ninja directly (see README).

PACKAGES := g++ cmake pkg-config meson ninja-build libopenblas-dev liblapacke-dev \
            libfmt-dev doctest-dev libbenchmark-dev libhwy-dev gnuplot-nox libopenmpi-dev openmpi-bin \
            clang libfuzzer-14-dev
BUILD := build
ASAN_BUILD := build-asan

.PHONY: demo test deps build build-asan bench clean

deps:
	@scripts/install-deps.sh $(PACKAGES)

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=release

$(ASAN_BUILD)/build.ninja: | deps
	meson setup $(ASAN_BUILD) --buildtype=debugoptimized -Dbench=disabled \
	  -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

demo: build
	OPENBLAS_NUM_THREADS=1 ./$(BUILD)/examples/stock_returns

test: build build-asan
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

bench: build
	OPENBLAS_NUM_THREADS=1 scripts/run-bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
