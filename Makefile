# make test         vet + every test with the race detector, against a real Redis
#                   (REDIS_URL, else 127.0.0.1:6379, else a redis-server started on a free port),
#                   then the deployment checks (deploy/test: Dockerfile, image build, Kubernetes base)
# make bench        the benchmarks (expiry lateness, sweep cost, store throughput)
# make demo         the console demo
# make build        ./accessbot, with version, commit and date stamped in (deploy/build.sh)
# make image-check  run the Dockerfile's build stage here and check the binary (static, runs `version`)
# make image        docker build (needs a Docker engine); IMAGE=registry/accessbot:tag

GO ?= go
IMAGE ?= accessbot:dev

.PHONY: test vet bench demo build deploy-test image-check image

test: vet
	$(GO) test -race -count=1 -timeout 40m ./...
	$(MAKE) deploy-test

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# deploy/test is a module of its own (BuildKit's Dockerfile parser and the
# Kubernetes API types stay out of the bot's go.mod).
deploy-test:
	cd deploy/test && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

image-check:
	cd deploy/test && $(GO) test -count=1 -timeout 10m -run 'TestDockerfile|TestDockerignore|TestImage' -v ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./store/... ./scheduler/... .

build:
	./deploy/build.sh accessbot

image:
	docker build -t $(IMAGE) \
	  --build-arg VERSION=$$(git describe --tags --always --dirty) \
	  --build-arg COMMIT=$$(git rev-parse --short=12 HEAD) \
	  --build-arg DATE=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

demo:
	$(GO) run . run --config manifests/examples/demo.yaml
