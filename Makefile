# The two commands of the README:
#   make book   build the website into _build/html (executing every chapter)
#   make test   run every test: course_lib against torch, the assignments through nbgrader, nbval, the book build
# Both create .venv on first use and install requirements.txt plus course_lib (editable) into it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
# nbgrader shells out to alembic, and the book build to jupyter: the venv's bin must come first on PATH.
RUN    := PATH="$(BIN):$$PATH" VIRTUAL_ENV="$(abspath $(VENV))"

.PHONY: book test lint install assignments demo-class clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e .
	touch $(STAMP)

book: $(STAMP)
	$(RUN) $(BIN)/python tools/build_book.py

test: $(STAMP)
	$(RUN) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Student versions of every assignment (solutions and hidden tests removed) into assignments/release/
assignments: $(STAMP)
	cd assignments && for a in source/*/; do $(RUN) $(BIN)/nbgrader generate_assignment "$$(basename $$a)" --force; done

# A term of assignment 01 for made-up students, from release to grades, as deploy/RUNBOOK.md says; then clean-up
demo-class: $(STAMP)
	$(RUN) $(BIN)/python tools/demo_class.py $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check course_lib tests tools benchmarks

clean:
	rm -rf _build assignments/release assignments/submitted assignments/autograded assignments/feedback assignments/reports \
	       assignments/gradebook.db .pytest_cache
