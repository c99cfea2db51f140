# Entry points for people and CI. The real build is meson; this file only
# strings the steps together.
#
#   make demo    install missing packages, release and static builds, run
#                scripts/demo.sh: a VM with no NIC pulls from the host daemon
#   make check   install missing packages, clang + ASan/UBSan/LSan build, every test suite
#   make build   install missing packages, release build only
#   make static  statically linked porthole and portholed (for VM tests)
#   make bench   install missing packages, run bench/run.sh
#   make clean   remove build/

MESON		?= meson
CHECK_DIR	:= build/check
RELEASE_DIR	:= build/release
STATIC_DIR	:= build/static

CHECK_OPTS	:= -Db_sanitize=address,undefined \
		   -Dc_args=-fno-sanitize-recover=all -Dwerror=true -Dtests=true
RELEASE_OPTS	:= --buildtype=release -Dtests=false
# Statically linked porthole and portholed for the VM tests' initramfs.
STATIC_OPTS	:= --buildtype=release -Dtests=false -Dstatic_guest=true \
		   -Dstatic_daemon=true

# Any leak, any sanitizer report, any undefined behaviour fails the process
# that hit it, and with it the test.
export ASAN_OPTIONS := detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:print_summary=1
export UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1:print_summary=1

.PHONY: all deps build static check demo bench clean

all: build

deps:
	@scripts/install-deps.sh

# Configure dir $(1) with compiler $(2) and options $(3); an existing,
# intact build dir is reconfigured instead so options always match.
define configure
	@if [ -f $(1)/meson-private/coredata.dat ]; then \
		echo "make: reconfiguring $(1)"; \
		CC=$(2) $(MESON) setup --reconfigure $(1) $(3); \
	else \
		rm -rf $(1); \
		CC=$(2) $(MESON) setup $(1) $(3); \
	fi
endef

build: deps
	$(call configure,$(RELEASE_DIR),gcc,$(RELEASE_OPTS))
	$(MESON) compile -C $(RELEASE_DIR)

static: deps
	$(call configure,$(STATIC_DIR),gcc,$(STATIC_OPTS))
	$(MESON) compile -C $(STATIC_DIR)

# Every suite: unit, fuzz, integration and vm (which boots guests with the
# static binaries).
check: deps
	$(call configure,$(CHECK_DIR),clang,$(CHECK_OPTS))
	$(MESON) compile -C $(CHECK_DIR)
	$(MAKE) --no-print-directory static
	PORTHOLE_VM_STATIC_DIR=$(CURDIR)/$(STATIC_DIR) \
		$(MESON) test -C $(CHECK_DIR) --print-errorlogs

# The host runs the release build's portholed; the VM gets the static porthole.
demo: build static
	BUILD_DIR=$(RELEASE_DIR) STATIC_DIR=$(STATIC_DIR) scripts/demo.sh

bench: deps
	bench/run.sh

clean:
	rm -rf build
