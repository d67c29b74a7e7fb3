# make test   vet + every test with the race detector, against a real Redis
#             (REDIS_URL, else 127.0.0.1:6379, else a redis-server started on a free port)
# make bench  the benchmarks (expiry lateness, sweep cost, store throughput)
# make demo   the console demo

GO ?= go

.PHONY: test vet bench demo build

test: vet
	$(GO) test -race -count=1 -timeout 40m ./...

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./store/... ./scheduler/... .

build:
	$(GO) build -o accessbot .

demo:
	$(GO) run . run --config manifests/examples/demo.yaml
