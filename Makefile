# evpipe — CSV event spool -> PostgreSQL.  `make`, `make test`, `make run`, `make deps`.
# Every module in src/ except the two daemons' main files goes into libevpipe.a; each
# tests/unit/test_*.c links against it.  Nothing here needs editing to add a module or a test.

VERSION   := 0.1.0
CC        ?= cc
PKG       ?= pkg-config
# libcsv ships no .pc file on Debian, so it is linked by name.
PKGS      := libpq uuid inih
PKG_CFLAGS := $(shell $(PKG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG) --libs $(PKGS) 2>/dev/null) -lcsv -lm

CFLAGS    ?= -O2 -g
WARN      := -std=c17 -Wall -Wextra -Werror -Wshadow -Wvla -Wformat=2
CPPFLAGS  += -Iinclude -D_GNU_SOURCE -DEVPIPE_VERSION='"$(VERSION)"'
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# One package list, read by `make deps`, .ci/run and docker/Dockerfile.
DEB_BUILD   := gcc make pkg-config libpq-dev libcsv-dev uuid-dev libinih-dev
DEB_RUNTIME := libpq5 libcsv3 libuuid1 libinih1
DEB_TEST    := postgresql-15 postgresql-client-15 procps util-linux
DEB_ALL     := $(DEB_BUILD) $(DEB_TEST)

DAEMONS   := evgen evstream
LIB_SRC   := $(filter-out $(addprefix src/,$(addsuffix .c,$(DAEMONS))),$(wildcard src/*.c))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)

BUILD     := build
SANBUILD  := build/san

.PHONY: all clean deps deps-list deps-check test unit run bench-evgen check-config
all: $(DAEMONS)

# --- release build -----------------------------------------------------------------
$(BUILD)/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -c $< -o $@
$(BUILD)/libevpipe.a: $(LIB_SRC:src/%.c=$(BUILD)/%.o)
	$(AR) rcs $@ $^
$(DAEMONS): %: $(BUILD)/%.o $(BUILD)/libevpipe.a
	$(CC) $(CFLAGS) $^ $(PKG_LIBS) -o $@

# --- sanitizer build (what `make test` runs) ---------------------------------------
$(SANBUILD)/%.o: src/%.c $(wildcard include/*.h) | $(SANBUILD)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) -O1 -g $(SAN) -c $< -o $@
$(SANBUILD)/libevpipe.a: $(LIB_SRC:src/%.c=$(SANBUILD)/%.o)
	$(AR) rcs $@ $^
$(SANBUILD)/evgen $(SANBUILD)/evstream: $(SANBUILD)/%: $(SANBUILD)/%.o $(SANBUILD)/libevpipe.a
	$(CC) $(SAN) $^ $(PKG_LIBS) -o $@
$(SANBUILD)/test_%: tests/unit/test_%.c tests/unit/check.h $(SANBUILD)/libevpipe.a
	$(CC) $(CPPFLAGS) -Itests/unit $(PKG_CFLAGS) $(WARN) -O1 -g $(SAN) $< $(SANBUILD)/libevpipe.a $(PKG_LIBS) -o $@

$(BUILD) $(SANBUILD):
	mkdir -p $@

# --- dependencies ------------------------------------------------------------------
deps-list:
	@echo $(DEB_ALL)
deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "deps: missing packages; run as root:"; \
		echo "  sudo apt-get update && sudo apt-get install -y $$missing"; exit 1; \
	fi

# --- tests -------------------------------------------------------------------------
TEST_BINS := $(UNIT_SRC:tests/unit/%.c=$(SANBUILD)/%) $(SANBUILD)/evgen $(SANBUILD)/evstream
test: deps $(TEST_BINS) $(DAEMONS)
	@EVPIPE_BIN=$(SANBUILD) EVPIPE_RELEASE_BIN=$(CURDIR) tests/run.sh $(TESTS)
unit: $(TEST_BINS)
	@EVPIPE_BIN=$(SANBUILD) tests/run.sh unit

# --- demo --------------------------------------------------------------------------
run: deps $(DAEMONS)
	@tests/lib/demo.sh

bench-evgen: evgen
	@tests/bench/evgen_burst.sh

clean:
	rm -rf $(BUILD) $(DAEMONS)
