package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// aliasBomb is the "billion laughs" document: nine levels of nine
// aliases, 9^9 values once expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [\"lol\"]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("clusters:\n  a: {bootstrap_servers: *a9}\n")
	return b.String()
}

func TestLoadRefusesAliasBomb(t *testing.T) {
	_, err := Parse("bomb.yaml", []byte(aliasBomb()))
	want := "bomb.yaml:2: YAML aliases expand to more than 100000 extra values (nested aliases grow exponentially); write the values out or use fewer nested aliases"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrUsage) {
		t.Errorf("not a usage error: %v", err)
	}
}

func TestLoadAcceptsModestAliases(t *testing.T) {
	y := `clusters:
  a: {bootstrap_servers: &servers ["h1:9092", "h2:9092"], dial_timeout: &dt 5s}
  b: {bootstrap_servers: *servers, dial_timeout: *dt}
flows:
  a->b: {}
`
	c, err := Parse("ok.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Clusters["b"].BootstrapServers; len(got) != 2 || got[1] != "h2:9092" {
		t.Errorf("b bootstrap_servers = %v, want the aliased list", got)
	}
}

func TestLoadRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{fifo, fifo + ": is not a regular file (a named pipe); pass a config file, or - to read standard input"},
		{"/dev/zero", "/dev/zero: is not a regular file (a character device); pass a config file, or - to read standard input"},
		{dir, dir + ": is not a regular file (a directory); pass a config file, or - to read standard input"},
		{filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "missing.yaml") + ": config file not found; pass an existing file with -c/--config (godwit sandbox --write-config FILE writes one)"},
	}
	for _, tt := range tests {
		_, err := LoadContext(context.Background(), tt.path, nil)
		if err == nil || err.Error() != tt.want {
			t.Errorf("LoadContext(%s) = %v\nwant %s", tt.path, err, tt.want)
		}
		if !errors.Is(err, ErrUsage) {
			t.Errorf("LoadContext(%s): not a usage error", tt.path)
		}
	}
	if _, err := LoadMM2(fifo); err == nil || !strings.Contains(err.Error(), "is not a regular file (a named pipe)") {
		t.Errorf("LoadMM2(fifo) = %v, want the regular-file error", err)
	}
}

func TestLoadRefusesLargeFiles(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: the size is what is refused, nothing is read.
	if err := f.Truncate(50 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Load(big)
	if want := big + ": is 52428800 bytes, over the 1 MiB limit for a config; is this the right file?"; err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	_, err = LoadContext(context.Background(), Stdin, io.LimitReader(zeros{}, 50<<20))
	if want := "stdin: is more than 1 MiB, over the 1 MiB limit for a config; is this the right file?"; err == nil || err.Error() != want {
		t.Errorf("stdin error = %v\nwant %s", err, want)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestLoadStdin(t *testing.T) {
	c, err := LoadContext(context.Background(), Stdin, strings.NewReader(base("    topics: [x]\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Path() != Stdin || c.Flows["a->b"] == nil {
		t.Errorf("path %q flows %v", c.Path(), c.FlowNames())
	}
}

// TestLoadStdinHonoursCancel: a signal (the CLI's context) ends a load
// blocked on a stdin nobody writes to.
func TestLoadStdinHonoursCancel(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := LoadContext(ctx, Stdin, r)
		errc <- err
	}()
	cancel(errors.New("terminated"))
	select {
	case err := <-errc:
		if want := "stdin: reading the config stopped: terminated"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("LoadContext did not return after its context was cancelled")
	}
}

func TestBootstrapServerValidation(t *testing.T) {
	tests := []struct{ server, want string }{
		{"localhost:99999999", `"localhost:99999999": port "99999999" is not a number between 1 and 65535`},
		{"127.0.0.1:abc", `"127.0.0.1:abc": port "abc" is not a number between 1 and 65535`},
		{"127.0.0.1:0", `"127.0.0.1:0": port "0" is not a number between 1 and 65535`},
		{"h:-1", `"h:-1": port "-1" is not a number between 1 and 65535`},
		{":9092", `":9092" has no host; write it as host:9092`},
		{"bad host:9092", `"bad host:9092": host "bad host" is not a valid host name or IP address`},
		{"-h:9092", `"-h:9092": host "-h" is not a valid host name or IP address`},
		{"a..b:9092", `"a..b:9092": host "a..b" is not a valid host name or IP address`},
		{"[nothex]:9092", `"[nothex]:9092": "nothex" in brackets is not an IPv6 address`},
		{"::1:9092", `"::1:9092" is not host:port (too many colons in address)`},
		{"h", `"h" is not host:port (missing port in address)`},
	}
	for _, tt := range tests {
		y := fmt.Sprintf("clusters:\n  a: {bootstrap_servers: [%q]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  a->b: {}\n", tt.server)
		_, err := Parse("s.yaml", []byte(y))
		if err == nil || !strings.HasPrefix(err.Error(), "s.yaml:2: clusters.a.bootstrap_servers[0]: "+tt.want) {
			t.Errorf("%s: error = %v\nwant s.yaml:2: clusters.a.bootstrap_servers[0]: %s...", tt.server, err, tt.want)
		}
	}
	for _, ok := range []string{"localhost:1", "broker-1.kafka.svc.cluster.local:65535", "10.0.0.1:9092", "[::1]:9092", "[fe80::1%eth0]:9092", "my_host.internal:9092", "B1.EXAMPLE.COM.:9094"} {
		y := fmt.Sprintf("clusters:\n  a: {bootstrap_servers: [%q]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  a->b: {}\n", ok)
		if _, err := Parse("s.yaml", []byte(y)); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

func TestClusterAliasValidation(t *testing.T) {
	tests := []struct{ alias, want string }{
		{"priÿmary", `cluster alias "priÿmary" has character 'ÿ' at byte 3; aliases become part of topic names, so use only ASCII letters, digits, '.', '_' and '-'`},
		{"east/1", `cluster alias "east/1" has character '/' at byte 4`},
		{"east 1", `cluster alias "east 1" has character ' ' at byte 4`},
		{"ëast", `cluster alias "ëast" has character 'ë' at byte 0`},
		{"..", `cluster alias ".." is not allowed (Kafka refuses topic names . and ..)`},
		{strings.Repeat("x", 101), `cluster alias "` + strings.Repeat("x", 101) + `" is 101 characters; use at most 100`},
	}
	for _, tt := range tests {
		y := fmt.Sprintf("clusters:\n  %q: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\n", tt.alias)
		_, err := Parse("a.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), ": "+tt.want) {
			t.Errorf("%q: error = %v\nwant ...%s", tt.alias, err, tt.want)
		}
	}
	// Invalid UTF-8 written raw into the file (the sweep's case).
	raw := "clusters:\n  pri\xffmary: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\n"
	if _, err := Parse("a.yaml", []byte(raw)); err == nil || !strings.Contains(err.Error(), "has U+FFFD (invalid UTF-8 in the file) at byte 3; aliases become part of topic names") {
		t.Errorf("raw invalid UTF-8 alias: error = %v", err)
	}
	if _, err := Parse("a.yaml", []byte("clusters:\n  us-east_1.prod: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n  us-east_1.prod->b: {}\n")); err != nil {
		t.Errorf("a valid alias refused: %v", err)
	}
}

// TestZeroDurationsRefused: an explicit 0 used to become the default
// silently; now each duration key where 0 means nothing says so.
func TestZeroDurationsRefused(t *testing.T) {
	clusters := "clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\n"
	tests := []struct{ yaml, path string }{
		{base("    commit_interval: 0s\n"), "flows.a->b.commit_interval"},
		{base("    refresh_interval: 0s\n"), "flows.a->b.refresh_interval"},
		{base("    heartbeat_interval: 0s\n"), "flows.a->b.heartbeat_interval"},
		{base("    checkpoint_interval: '0s'\n"), "flows.a->b.checkpoint_interval"},
		{"clusters:\n  a: {bootstrap_servers: [\"h:1\"], dial_timeout: 0s}\n  b: {bootstrap_servers: [\"h:2\"]}\n", "clusters.a.dial_timeout"},
		{clusters + "cutover: {command: 'true', timeout: 0s}\n", "cutover.timeout"},
		{clusters + "drill: {max_age: 0h}\n", "drill.max_age"},
		{clusters + "drill: {refresh_interval: 0m}\n", "drill.refresh_interval"},
	}
	for _, tt := range tests {
		_, err := Parse("z.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), ": "+tt.path+": ") || !strings.Contains(err.Error(), "is zero, which means nothing here (it would not become the default); give a positive duration such as 10s, or remove the key for the default") {
			t.Errorf("%s: error = %v", tt.path, err)
		}
	}
	// rpo_objective: 0s means "no objective", as config check prints it.
	if _, err := Parse("z.yaml", []byte(base("    rpo_objective: 0s\n"))); err != nil {
		t.Errorf("rpo_objective: 0s refused: %v", err)
	}
}

// TestLoadRefusesCostlyShapes: documents under the size cap whose parse
// would cost far more than their size (deep flow nesting, a huge
// mapping, a million tokens) are refused from the token stream.
func TestLoadRefusesCostlyShapes(t *testing.T) {
	var wide strings.Builder
	wide.WriteString("clusters:\n")
	for i := range maxMappingKeys + 1 {
		fmt.Fprintf(&wide, "  c%d: {bootstrap_servers: [\"h:1\"]}\n", i)
	}
	tests := []struct{ name, yaml, want string }{
		{"deep flow nesting", strings.Repeat("[", 500_000) + strings.Repeat("]", 500_000),
			"n.yaml: has more than 100000 YAML tokens; a config is far smaller; is this the right file?"},
		{"nesting past the limit", "clusters: " + strings.Repeat("[", maxFlowDepth+1) + strings.Repeat("]", maxFlowDepth+1) + "\n",
			"n.yaml:1: YAML [ ] and { } are nested more than 64 deep; a config needs two or three levels"},
		{"a mapping of 5001 keys", wide.String(),
			"n.yaml:5002: a YAML mapping has more than 5000 keys; a config's largest mapping (flows:, clusters:) has tens; is this the right file?"},
	}
	for _, tt := range tests {
		_, err := Parse("n.yaml", []byte(tt.yaml))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: error = %v\nwant %s", tt.name, err, tt.want)
		}
	}
}

// TestLoadKeyCountIsPerMapping: keys of sibling mappings, and of the
// mappings in a list, are not added up.
func TestLoadKeyCountIsPerMapping(t *testing.T) {
	var b strings.Builder
	b.WriteString("clusters:\n  a: {bootstrap_servers: [\"h:1\"]}\n  b: {bootstrap_servers: [\"h:2\"]}\nflows:\n")
	// 60 flows of 100 keys each would be 6000 keys in one count if the
	// mappings were not told apart; so would 60 list items of 100.
	for f := range 60 {
		fmt.Fprintf(&b, "  a->b%d:\n", f)
		for k := range 100 {
			fmt.Fprintf(&b, "    k%d: 1\n", k)
		}
	}
	b.WriteString("x:\n")
	for i := range 60 {
		fmt.Fprintf(&b, "  - {}\n  - k%d: 1\n", i)
		for k := range 100 {
			fmt.Fprintf(&b, "    j%d: 1\n", k)
		}
	}
	if err := checkStructure("k.yaml", []byte(b.String())); err != nil {
		t.Errorf("refused: %v", err)
	}
	// The same keys in one mapping are refused.
	b.Reset()
	b.WriteString("x:\n")
	for k := range 6000 {
		fmt.Fprintf(&b, "  k%d: 1\n", k)
	}
	if err := checkStructure("k.yaml", []byte(b.String())); err == nil || !strings.Contains(err.Error(), "k.yaml:5002: a YAML mapping has more than 5000 keys") {
		t.Errorf("6000 keys: error = %v", err)
	}
}
