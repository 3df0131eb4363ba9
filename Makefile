# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-sqlite test-pg unit integration e2e chaos bench clean check-config chromium dovecot

$(STAMP): requirements.txt pyproject.toml examples/slotguard-weekend-surcharge/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# Slotguard itself (pinned dependencies above): the `slotguard` command and its entry points.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	# The example third-party policy, installed through its entry point (tests load it).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e examples/slotguard-weekend-surcharge
	touch $(STAMP)

# The compiled message catalogs of the emails (.mo, not committed), from the .po sources.
# Slotguard also reads a .po directly when its .mo is missing or older.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard templates/locale/*/LC_MESSAGES/messages.po))
$(CATALOGS): %.mo: %.po | $(STAMP)
	$(PY) tools/catalogs.py compile $<

# One full cycle of the main job on the bundled example week, as of its Thursday noon (the
# first tick of the month also sends last month's report to the outbox), then that week's
# monthly report as a page: var/report.html.
run: $(STAMP) $(CATALOGS)
	$(PY) main.py run --once --config config/example.toml --now 2026-11-26T12:00:00+01:00
	$(PY) main.py report --config config/example.toml --month 2026-11 --now 2026-11-26T12:00:00+01:00 --out var/report.html --force

check-config: $(STAMP) $(CATALOGS)
	$(PY) main.py check-config --config config/example.toml

# Debian's Chromium for the browser tests (tests/support/browser.py), installed when missing and
# this machine lets us (root, apt-get); otherwise those tests skip saying so (under CI=true they fail).
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends chromium fonts-dejavu-core \
	  || { apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }; \
	else echo "No $(CHROMIUM), and installing it needs root and apt-get: the browser tests will skip"; fi

# Debian's Dovecot for the IMAP tests (tests/support/imap_server.py runs it as a user process with a
# config of its own; the system service is not used), installed when missing and this machine lets
# us (root, apt-get); otherwise those tests skip saying so (under CI=true they fail).
DOVECOT := /usr/sbin/dovecot
dovecot:
	@if [ -x $(DOVECOT) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing Debian's dovecot-imapd for the IMAP tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y --no-install-recommends dovecot-imapd \
	  || { apt-get update && apt-get install -y --no-install-recommends dovecot-imapd; }; \
	else echo "No $(DOVECOT), and installing it needs root and apt-get: the IMAP tests will skip"; fi

# The whole suite twice: on SQLite, then with every ledger on PostgreSQL (SLOTGUARD_TEST_PG,
# else 127.0.0.1:5432; no server: the second run says so and skips, under CI=true it fails).
test: $(STAMP) $(CATALOGS) chromium dovecot
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -q tests
	SLOTGUARD_TEST_BACKEND=postgresql $(PY) -m pytest -q -m "not sqlite_only" tests

test-sqlite: $(STAMP) $(CATALOGS) chromium dovecot
	$(PY) -m pytest -q tests

test-pg: $(STAMP) $(CATALOGS) chromium dovecot
	SLOTGUARD_TEST_BACKEND=postgresql $(PY) -m pytest -q -m "not sqlite_only" tests

unit: $(STAMP) $(CATALOGS)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP) $(CATALOGS) chromium dovecot
	$(PY) -m pytest -q tests/integration

e2e: $(STAMP) $(CATALOGS) dovecot
	$(PY) -m pytest -q tests/end_to_end

# The crash-anywhere test, long: KILLS=N kills of the daemon (default 60), SEED=S replays a run.
KILLS ?= 60
chaos: $(STAMP) $(CATALOGS)
	SLOTGUARD_CHAOS_KILLS=$(KILLS) SLOTGUARD_CHAOS_SEED=$(SEED) $(PY) -m pytest -q -s tests/end_to_end/test_crash_anywhere.py

bench: $(STAMP)
	$(PY) bench/bench_tick.py

clean:
	rm -rf var .pytest_cache
