# evpipe — CSV event spool -> PostgreSQL.  `make`, `make test`, `make run`, `make deps`.
# Every module in src/ except the two daemons' main files goes into libevpipe.a; each
# tests/unit/test_*.c links against it.  Nothing here needs editing to add a module or a test.

VERSION   := 0.1.0
CC        ?= cc
PKG       ?= pkg-config
# libcsv ships no .pc file on Debian, so it is linked by name.
PKGS      := libpq uuid inih libsystemd zlib

# pkg-config runs when a compile or link first needs its answer, never when make reads
# this file: `make test` and `make run` install the -dev packages (`make deps`) first and
# only then build, in a make of their own.  Its errors are shown, and stop the build.
pkg = $(shell $(PKG) $(1) $(PKGS))$(if $(filter 0,$(.SHELLSTATUS)),,$(error $(PKG) $(1) $(PKGS) \
	failed (its message is above): run `make deps` as root, or install: $(DEB_BUILD)))
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg,--cflags))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(call pkg,--libs) -lcsv -lm)$(PKG_LIBS)

# CPPFLAGS, CFLAGS, LDFLAGS and LDLIBS are the user's: ours go beside them, never instead.
CFLAGS    ?= -O2 -g
WARN      := -std=c17 -Wall -Wextra -Werror -Wshadow -Wvla -Wformat=2
OUR_CPPFLAGS = -Iinclude -D_GNU_SOURCE -DEVPIPE_VERSION='"$(VERSION)"' $(PKG_CFLAGS) $(CPPFLAGS)
DEPFLAGS  := -MMD -MP
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
COMPILE    = $(CC) $(OUR_CPPFLAGS) $(DEPFLAGS) $(WARN)
LINK       = $(CC) $(LDFLAGS)

# The package lists, one each, read by `make deps`/`deps-run`, .ci/run, docker/Dockerfile
# and (checked by tests/system/readme_package_lists.sh) the README.
DEB_BUILD   := gcc make pkg-config libpq-dev libcsv-dev uuid-dev libinih-dev libsystemd-dev zlib1g-dev
DEB_RUNTIME := libpq5 libcsv3 libuuid1 libinih1 libsystemd0 zlib1g
# `make run`: the build plus a PostgreSQL server (psql comes with it).
DEB_DEMO    := $(DEB_BUILD) postgresql-15
# `make test`: the demo's plus the test toolchain (fuzzers, valgrind, promtool, jq, and
# gnuplot-nox: tests/system/bench_plots_draw.sh redraws bench/results.md's plots).
DEB_TEST    := $(DEB_DEMO) postgresql-client-15 procps util-linux clang libclang-rt-14-dev valgrind jq \
	prometheus man-db strace python3 gnuplot-nox
DEB_ALL     := $(DEB_TEST)

DAEMONS   := evgen evstream
LIB_SRC   := $(filter-out $(addprefix src/,$(addsuffix .c,$(DAEMONS))),$(wildcard src/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)

BUILD     := build
SANBUILD  := build/san

.PHONY: all clean deps deps-run deps-list deps-build-list deps-runtime-list deps-run-list test test-bins \
	unit run bench-evgen
all: $(DAEMONS)

# --- release build -----------------------------------------------------------------
$(BUILD)/%.o: src/%.c | $(BUILD)
	$(COMPILE) $(CFLAGS) -c $< -o $@
$(BUILD)/libevpipe.a: $(LIB_SRC:src/%.c=$(BUILD)/%.o)
	$(AR) rcs $@ $^
$(DAEMONS): %: $(BUILD)/%.o $(BUILD)/libevpipe.a
	$(LINK) $(CFLAGS) $^ $(PKG_LIBS) $(LDLIBS) -o $@

# --- sanitizer build (what `make test` runs) ---------------------------------------
$(SANBUILD)/%.o: src/%.c | $(SANBUILD)
	$(COMPILE) -O1 -g $(SAN) -c $< -o $@
$(SANBUILD)/libevpipe.a: $(LIB_SRC:src/%.c=$(SANBUILD)/%.o)
	$(AR) rcs $@ $^
$(SANBUILD)/evgen $(SANBUILD)/evstream: $(SANBUILD)/%: $(SANBUILD)/%.o $(SANBUILD)/libevpipe.a
	$(LINK) $(SAN) $^ $(PKG_LIBS) $(LDLIBS) -o $@
$(SANBUILD)/test_%: tests/unit/test_%.c $(SANBUILD)/libevpipe.a | $(SANBUILD)
	$(COMPILE) -Itests/unit -O1 -g $(SAN) $< $(SANBUILD)/libevpipe.a $(LDFLAGS) $(PKG_LIBS) \
		$(LDLIBS) -o $@

$(BUILD) $(SANBUILD):
	mkdir -p $@

# Header dependencies, written by the compiler (-MMD -MP) beside each object.
-include $(wildcard $(BUILD)/*.d $(SANBUILD)/*.d $(SANBUILD)/fuzz/*.d $(BUILD)/vg/*.d)

# --- fault injection (issue 18): a test-only LD_PRELOAD shim --------------------------
# tests/fault/failshim.c fails the k-th call of one kind (tests/system/fail_every_call.sh).
# Never linked into the daemons; built beside them for the tests only.
$(BUILD)/failshim.so: tests/fault/failshim.c | $(BUILD)
	$(CC) $(WARN) -Wno-format-nonliteral -O1 -g -fPIC -shared $(PKG_CFLAGS) $(CPPFLAGS) $< \
		$(LDFLAGS) -ldl -o $@
test-bins: $(BUILD)/failshim.so

# --- dependencies ------------------------------------------------------------------
deps-list:
	@echo $(DEB_ALL)
# docker/Dockerfile: its build stage installs deps-build-list, its runtime stage
# deps-runtime-list.
deps-build-list:
	@echo $(DEB_BUILD)
deps-runtime-list:
	@echo $(DEB_RUNTIME)
deps-run-list:
	@echo $(DEB_DEMO)

# Installs what is missing of DEB_ALL as root; otherwise prints the apt-get line and
# stops.  `make deps DEB_ALL='...'` installs another list (deps-run, bench-deps).
deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "deps: missing packages; run as root:"; \
		echo "  sudo apt-get update && sudo apt-get install -y $$missing"; exit 1; \
	fi
deps-run:
	@$(MAKE) --no-print-directory deps DEB_ALL='$(DEB_DEMO)'

# --- tests -------------------------------------------------------------------------
# A target that installs packages (`make test`, `make run`, ...) does so first, then
# builds in a make of its own, which reads pkg-config's answers only now and honours
# -j, then runs: one step after the other (apt-get one at a time: -j1).
# $(call setup,DEPS-TARGETS,BUILD-TARGETS)
define setup
@$(MAKE) --no-print-directory -j1 $(1)
@$(MAKE) --no-print-directory $(2)
endef
TEST_BINS := $(UNIT_SRC:tests/unit/%.c=$(SANBUILD)/%) $(SANBUILD)/evgen $(SANBUILD)/evstream
test:
	$(call setup,deps,test-bins)
	@EVPIPE_BIN=$(SANBUILD) EVPIPE_RELEASE_BIN=$(CURDIR) EVPIPE_TEST_JOBS=$${EVPIPE_TEST_JOBS:-2} \
		bash tests/run.sh $(TESTS)
test-bins: $(TEST_BINS) $(DAEMONS)
unit: $(TEST_BINS)
	@EVPIPE_BIN=$(SANBUILD) bash tests/run.sh unit

# --- operate it (issue 10): status, metrics, quarantine -----------------------------
# DEB_TEST holds jq (tests/integration/status_and_metrics.sh reads `status --json`) and
# prometheus, for its promtool: `promtool check metrics` judges the metrics file, and
# `promtool check rules` / `test rules` the alert rules in monitoring/
# (alert_rules_and_dashboard.sh).  The package is the whole Prometheus server (~19 MB
# download, ~96 MB installed, ~7 s); Debian ships promtool in no smaller package.  Under systemd its postinst starts a
# prometheus service on :9090 (containers with policy-rc.d, like CI's, do not).

# --- demo --------------------------------------------------------------------------
run:
	$(call setup,deps-run,$(DAEMONS))
	@bash tests/lib/demo.sh

bench-evgen: evgen
	@tests/bench/evgen_burst.sh

clean:
	rm -rf $(BUILD) $(DAEMONS)

# --- reliability (issue 5): fuzzing, valgrind, soak, the report --------------------
# tests/fuzz/fuzz_*.c are libFuzzer targets, built with clang against the modules
# they exercise, compiled again with coverage and -DCSVIN_SMALL_SIZES (csvin.h).
# `make test` runs them for a minute each beside the soak
# (tests/system/fuzz_and_soak_hold.sh); `make fuzz FUZZ_SECONDS=N` runs them longer.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
SOAK_SECONDS ?= 3600
FUZZBUILD    := $(SANBUILD)/fuzz
FUZZ_MODS    := util csvin gz validate event log batch dedupe spool durable ckpt_format ckpt_names
FUZZ_BINS    := $(SANBUILD)/fuzz_csv $(SANBUILD)/fuzz_ckpt
VGBUILD      := $(BUILD)/vg
# clang also flags vprintf-style helpers (a va_list of a checked format), gcc does not.
FUZZ_WARN    := $(WARN) -Wno-format-nonliteral
.PHONY: fuzz soak check-valgrind reliability-report
$(FUZZBUILD):
	mkdir -p $@
$(FUZZBUILD)/%.o: src/%.c | $(FUZZBUILD)
	$(FUZZ_CC) $(OUR_CPPFLAGS) $(DEPFLAGS) -DCSVIN_SMALL_SIZES $(FUZZ_WARN) -O1 -g \
		-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -c $< -o $@
$(FUZZBUILD)/libfuzz.a: $(FUZZ_MODS:%=$(FUZZBUILD)/%.o)
	$(AR) rcs $@ $^
$(SANBUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZBUILD)/libfuzz.a
	$(FUZZ_CC) $(OUR_CPPFLAGS) -DCSVIN_SMALL_SIZES $(FUZZ_WARN) -O1 -g $(LDFLAGS) \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(filter-out %.h,$^) \
		$(PKG_LIBS) $(LDLIBS) -o $@
test-bins: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	@EVPIPE_BIN=$(SANBUILD) bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# The soak uses the release daemons: RSS under ASan measures ASan's quarantine.
soak:
	$(call setup,deps,$(DAEMONS))
	@EVPIPE_RELEASE_BIN=$(CURDIR) SOAK_SECONDS=$(SOAK_SECONDS) bash tests/soak/soak.sh

# valgrind wants the daemons without sanitizers; -O1 -g keeps its stacks readable.
$(VGBUILD)/%.o: src/%.c
	@mkdir -p $(VGBUILD)
	$(COMPILE) -O1 -g -c $< -o $@
$(VGBUILD)/libevpipe.a: $(LIB_SRC:src/%.c=$(VGBUILD)/%.o)
	$(AR) rcs $@ $^
$(VGBUILD)/evgen $(VGBUILD)/evstream: $(VGBUILD)/%: $(VGBUILD)/%.o $(VGBUILD)/libevpipe.a
	$(LINK) -O1 -g $^ $(PKG_LIBS) $(LDLIBS) -o $@
check-valgrind:
	$(call setup,deps,$(VGBUILD)/evgen $(VGBUILD)/evstream)
	@EVPIPE_VG_BIN=$(VGBUILD) bash tests/valgrind/run.sh

# Runs the scenarios, the fuzzers, valgrind and the soak, then writes tests/RELIABILITY.md.
reliability-report:
	$(call setup,deps,test-bins $(VGBUILD)/evgen $(VGBUILD)/evstream)
	@EVPIPE_BIN=$(SANBUILD) EVPIPE_RELEASE_BIN=$(CURDIR) EVPIPE_VG_BIN=$(VGBUILD) \
		FUZZ_SECONDS=$(FUZZ_SECONDS) SOAK_SECONDS=$(SOAK_SECONDS) \
		bash tests/reliability/report.sh tests/RELIABILITY.md

# --- benchmark (issue 6; not part of `make test`) -------------------------------------
# bench/bench.sh: evstream --once beside psql \copy (per file and one COPY) and pgloader
# on a throwaway cluster, then latency, memory, cost growth, history and gzip.  `make
# bench` writes bench/results.md, the tables' figures as bench/data/*.tsv and their plots
# (bench/plot.sh, gnuplot) as bench/plots/*.svg (about an hour); `make bench-quick` (1 M
# events, one run each) prints the same tables and leaves its data and plots in
# build/bench/.  pgloader, time(1) and gnuplot-nox are bench-only packages.
DEB_BENCH := pgloader time gnuplot-nox
.PHONY: bench bench-quick bench-deps
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_ALL='$(DEB_BENCH)'
bench:
	$(call setup,deps bench-deps,$(DAEMONS))
	@EVPIPE_RELEASE_BIN=$(CURDIR) BENCH_OUT=bench/results.md BENCH_DATA=bench/data \
		BENCH_PLOTS=bench/plots bash bench/bench.sh
bench-quick:
	$(call setup,deps bench-deps,$(DAEMONS))
	@EVPIPE_RELEASE_BIN=$(CURDIR) bash bench/bench.sh --quick

# --- install under systemd (issue 8) --------------------------------------------------
# `make install` / `make uninstall`; PREFIX, DESTDIR, sysconfdir and the systemd
# directories as usual.  The units, sysusers.d and tmpfiles.d files go where systemd
# looks (pkg-config systemd; /lib/systemd/system etc. without it), not under PREFIX.
# The units and man pages name /usr/local/sbin and /etc/evpipe; install rewrites both.
# Files in $(sysconfdir)/evpipe are never overwritten (the examples also go to docdir),
# and uninstall removes them only while they are still the shipped examples.
# RELEASE_BIN: where the release daemons are taken from (tests pass their own build).
PREFIX      ?= /usr/local
sbindir     ?= $(PREFIX)/sbin
datadir     ?= $(PREFIX)/share
mandir      ?= $(datadir)/man
docdir      ?= $(datadir)/doc/evpipe
sysconfdir  ?= /etc
systemd_var  = $(or $(shell $(PKG) --variable=$(1) systemd 2>/dev/null),$(2))
unitdir     ?= $(call systemd_var,systemdsystemunitdir,/lib/systemd/system)
sysusersdir ?= $(call systemd_var,sysusersdir,/usr/lib/sysusers.d)
tmpfilesdir ?= $(call systemd_var,tmpfilesdir,/usr/lib/tmpfiles.d)
RELEASE_BIN ?= .
# The release daemons inside a private BUILD as well (make BUILD=/tmp/x/build
# /tmp/x/build/evstream), to pass as RELEASE_BIN= or EVPIPE_RELEASE_BIN=.
$(BUILD)/evgen $(BUILD)/evstream: $(BUILD)/%: $(BUILD)/%.o $(BUILD)/libevpipe.a
	$(LINK) $(CFLAGS) $^ $(PKG_LIBS) $(LDLIBS) -o $@
# monitoring/: the alert rules, their promtool test (it finds the rules beside it, so an
# edited copy can be tested where it lies) and the Grafana dashboard, next to the docs;
# the commands their descriptions give name the installed configuration file.
MON_FILES    = evpipe.rules.yml evpipe.rules.test.yml grafana-evpipe.json
INSTALL_SED  = sed -e 's|/usr/local/sbin/|$(sbindir)/|g' -e 's|/etc/evpipe/|$(sysconfdir)/evpipe/|g'
INSTALL_CONF = $(DESTDIR)$(sysconfdir)/evpipe
.PHONY: install uninstall
install: $(addprefix $(RELEASE_BIN)/,$(DAEMONS))
	install -d $(DESTDIR)$(sbindir) $(DESTDIR)$(mandir)/man8 $(DESTDIR)$(datadir)/evpipe/sql \
		$(DESTDIR)$(docdir) $(DESTDIR)$(unitdir) $(DESTDIR)$(sysusersdir) \
		$(DESTDIR)$(tmpfilesdir) $(INSTALL_CONF) $(DESTDIR)$(docdir)/monitoring
	install -m 0755 $^ $(DESTDIR)$(sbindir)/
	for f in evgen.service evstream.service; do \
		$(INSTALL_SED) systemd/$$f >$(DESTDIR)$(unitdir)/$$f && \
		chmod 0644 $(DESTDIR)$(unitdir)/$$f || exit 1; done
	for f in evgen.8 evstream.8; do \
		$(INSTALL_SED) systemd/$$f >$(DESTDIR)$(mandir)/man8/$$f && \
		chmod 0644 $(DESTDIR)$(mandir)/man8/$$f || exit 1; done
	install -m 0644 systemd/sysusers.d/evpipe.conf $(DESTDIR)$(sysusersdir)/evpipe.conf
	install -m 0644 systemd/tmpfiles.d/evpipe.conf $(DESTDIR)$(tmpfilesdir)/evpipe.conf
	install -m 0644 sql/*.sql $(DESTDIR)$(datadir)/evpipe/sql/
	install -m 0644 systemd/evpipe.ini systemd/evstream.env $(DESTDIR)$(docdir)/
	for f in $(MON_FILES); do \
		$(INSTALL_SED) monitoring/$$f >$(DESTDIR)$(docdir)/monitoring/$$f && \
		chmod 0644 $(DESTDIR)$(docdir)/monitoring/$$f || exit 1; done
	test -e $(INSTALL_CONF)/evpipe.ini || install -m 0644 systemd/evpipe.ini $(INSTALL_CONF)/
	test -e $(INSTALL_CONF)/evstream.env || install -m 0600 systemd/evstream.env $(INSTALL_CONF)/
# A running unit would go on from a deleted binary, and its multi-user.target.wants link
# would dangle: on a live systemd (no DESTDIR) stop and disable both first.
SYSTEMD_LIVE = $(and $(if $(DESTDIR),,yes),$(wildcard /run/systemd/system))
LIVE_UNITS   = $(if $(SYSTEMD_LIVE),$(notdir $(wildcard $(addprefix $(unitdir)/,evgen.service evstream.service))))
uninstall:
	$(if $(LIVE_UNITS),systemctl disable --now $(LIVE_UNITS))
	rm -f $(addprefix $(DESTDIR)$(sbindir)/,$(DAEMONS)) \
		$(addprefix $(DESTDIR)$(mandir)/man8/,evgen.8 evstream.8) \
		$(addprefix $(DESTDIR)$(unitdir)/,evgen.service evstream.service) \
		$(DESTDIR)$(sysusersdir)/evpipe.conf $(DESTDIR)$(tmpfilesdir)/evpipe.conf \
		$(addprefix $(DESTDIR)$(datadir)/evpipe/,$(wildcard sql/*.sql)) \
		$(addprefix $(DESTDIR)$(docdir)/,evpipe.ini evstream.env) \
		$(addprefix $(DESTDIR)$(docdir)/monitoring/,$(MON_FILES))
	for f in evpipe.ini evstream.env; do \
		! cmp -s systemd/$$f $(INSTALL_CONF)/$$f || rm -f $(INSTALL_CONF)/$$f; done
	rmdir $(DESTDIR)$(datadir)/evpipe/sql $(DESTDIR)$(datadir)/evpipe \
		$(DESTDIR)$(docdir)/monitoring $(DESTDIR)$(docdir) \
		$(INSTALL_CONF) 2>/dev/null || true
	$(if $(SYSTEMD_LIVE),systemctl daemon-reload)
