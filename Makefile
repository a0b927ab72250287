# The set-up commands (see README): `make demo`, `make test` and `make bench`.
.PHONY: demo test bench lint venv clean

demo:
	./scripts/demo.sh

test:
	./scripts/test.sh

bench:
	./scripts/bench.sh

lint: venv
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

venv:
	./scripts/venv.sh

clean:
	rm -rf .venv var build dist *.egg-info
