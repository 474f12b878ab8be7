.PHONY: test build kafka-up kafka-down kafka-status kafka-logs kafka-clean registry-up registry-down registry-status vet

test:
	./scripts/test.sh

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
