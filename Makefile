# Two commands for users: `make demo` and `make test`. Everything else is for developers.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
WORDNET_DB := /usr/share/wordnet/data.noun

.PHONY: demo test bench wordnet browser install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# constraints.txt pins the tested torch and torchvision; pip takes them from the machine's wheel cache when it has them
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,openvino,onnx]'
	touch $(STAMP)

install: $(STAMP)

# WordNet 3.0 from Debian's packages (the taxonomy tests use the real database); only when missing and root.
wordnet:
	@if [ ! -f $(WORDNET_DB) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing WordNet 3.0 (wordnet-base, wordnet-sense-index)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null; \
	fi

# Debian's chromium for the report's browser test; only when missing and root (elsewhere the test is skipped).
browser:
	@if ! command -v chromium >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (the report page's browser test)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

test: $(STAMP) wordnet browser
	$(PY) -m pytest

demo: $(STAMP)
	# --force replaces only the demo's own files (a second `make demo` starts afresh)
	$(VENV)/bin/hier demo --out demo --force

# The timing benchmarks (minutes); the head-by-head comparison takes about an hour: bash bench/compare_heads.sh
BENCHES := taxo_build loss_speed decoder_speed feature_cache fit_overhead predict_speed heads_learn

bench: $(STAMP) wordnet
	for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done
	bash bench/calibration_promise.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
