.PHONY: test test-unit lint build kafka-up kafka-down kafka-status kafka-logs kafka-clean registry-up registry-down registry-status vet

test:
	./scripts/test.sh

# The fast lane: unit tests only (-short skips every test that needs a pair
# of clusters, embedded or real); no Kafka, no registries, no -race.
test-unit:
	go test -short -count=1 ./...

# What CI lints with (scripts/test.sh installs staticcheck when missing).
lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	go vet ./...
	staticcheck ./...

build:
	go build -o bin/godwit ./cmd/godwit

vet:
	go vet ./...

kafka-up:
	./scripts/kafka.sh up

kafka-down:
	./scripts/kafka.sh down

kafka-status:
	./scripts/kafka.sh status

kafka-logs:
	./scripts/kafka.sh logs

kafka-clean:
	./scripts/kafka.sh clean

registry-up:
	./scripts/registry.sh up

registry-down:
	./scripts/registry.sh down

registry-status:
	./scripts/registry.sh status
