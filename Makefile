.PHONY: test build kafka-up kafka-down kafka-status kafka-logs kafka-clean vet

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
