# The two set-up commands (see README): `make demo` and `make test`.
.PHONY: demo test lint venv clean

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

lint: venv
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

venv:
	./scripts/venv.sh

clean:
	rm -rf .venv var build dist *.egg-info
