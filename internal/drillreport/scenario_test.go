package drillreport

import (
	"strings"
	"testing"
	"time"
)

func TestScenarioStrictAndDefaults(t *testing.T) {
	if _, err := ParseScenario("x.yaml", []byte("topics: [{name: a, partitons: 3}]\n")); err == nil || !strings.Contains(err.Error(), "partitons") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := ParseScenario("x.yaml", []byte("fault: {type: meteor}\n")); err == nil {
		t.Error("bad fault type accepted")
	}
	sc, err := ParseScenario("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Topics[0].Name != TopicPrefix+"orders" || sc.Groups[0].Name != TopicPrefix+"billing" || sc.Fault.Type != FaultSourceDown || sc.Workload.Peak.Rate <= sc.Workload.Rate {
		t.Errorf("defaults: %+v", sc)
	}
}

func TestConnectScenarioKeys(t *testing.T) {
	sc, err := ParseScenario("x.yaml", []byte("connect: {url: \"http://connect.dr:8083\", expect_running: [\"orders-sink\", \"cdc-.*\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Connect.Timeout != Defaults.Connect.Timeout || !sc.Connect.Enabled() {
		t.Errorf("connect defaults: %+v", sc.Connect)
	}
	if sc, _ := ParseScenario("", nil); sc.Connect.Enabled() {
		t.Error("the default scenario checks Kafka Connect")
	}
	for yml, want := range map[string]string{
		"connect: {url: \"connect:8083\"}\n":                                                   "http://host:port",
		"connect: {url: \"http://u:p@c:8083\"}\n":                                              "remove the credentials",
		"connect: {expect_running: [a]}\n":                                                     "set connect.url",
		"connect: {url: \"http://c:8083\", expect_running: [\"(\"]}\n":                         "expect_running[0]",
		"connect: {url: \"http://c:8083\", username: u}\n":                                     "password_env or password_file",
		"connect: {url: \"http://c:8083\", password_env: X}\n":                                 "without username",
		"connect: {url: \"http://c:8083\", ca_file: /ca.pem}\n":                                "https",
		"connect: {url: \"http://c:8083\", password: x}\n":                                     "password",
		"connect: {url: \"http://c:8083\", timeout: -1s}\n":                                    "positive",
		"connect: {url: \"https://c:8083\", username: u, password_env: A, password_file: B}\n": "one of",
	} {
		_, err := ParseScenario("x.yaml", []byte(yml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", strings.TrimSpace(yml), err, want)
		}
	}
}

func TestScenarioNetworkPartitionCommands(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"fault: {type: network-partition, command: cut}", "heal_command"},
		{"fault: {type: network-partition, heal_command: heal}", "fault.command"},
		{"fault: {type: source-down, heal_command: heal}", "network-partition only"},
	} {
		if _, err := ParseScenario("x.yaml", []byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.yaml, err, tc.want)
		}
	}
	for _, y := range []string{"fault: {type: network-partition}", "fault: {type: network-partition, command: cut, heal_command: heal}"} {
		sc, err := ParseScenario("x.yaml", []byte(y))
		if err != nil {
			t.Errorf("%s: %v", y, err)
			continue
		}
		if sc.Failover.SourceTimeout.D() != 10*time.Second {
			t.Errorf("default failover.source_timeout %v, want 10s (godwit failover's)", sc.Failover.SourceTimeout.D())
		}
	}
}
