package metrics

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, b
}

func listen(t *testing.T, pprof bool) *Server {
	t.Helper()
	s, err := Listen(Options{
		Addr: "127.0.0.1:0", Registry: NewRegistry(), Logger: slog.New(slog.DiscardHandler),
		Ready: func() (bool, string) { return true, "" }, Pprof: pprof,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Profiles are served only when http.pprof asks for them; metrics and
// health are served either way.
func TestPprofOptIn(t *testing.T) {
	off := listen(t, false)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap"} {
		if code, _ := get(t, "http://"+off.Addr()+path); code != http.StatusNotFound {
			t.Errorf("pprof off: GET %s = %d, want 404", path, code)
		}
	}
	if code, body := get(t, "http://"+off.Addr()+"/metrics"); code != http.StatusOK || !bytes.Contains(body, []byte("go_memstats_heap_inuse_bytes")) {
		t.Errorf("pprof off: /metrics = %d without the Go collector's heap gauge", code)
	}

	on := listen(t, true)
	code, body := get(t, "http://"+on.Addr()+"/debug/pprof/")
	if code != http.StatusOK || !bytes.Contains(body, []byte("heap")) {
		t.Fatalf("pprof on: GET /debug/pprof/ = %d, want the profile index listing heap:\n%s", code, body)
	}
	// The heap profile is what `go tool pprof` reads: a gzipped protobuf.
	code, body = get(t, "http://"+on.Addr()+"/debug/pprof/heap")
	if code != http.StatusOK {
		t.Fatalf("pprof on: GET /debug/pprof/heap = %d", code)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("heap profile is not gzip (what go tool pprof expects): %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
		t.Fatalf("heap profile: %d bytes after gunzip, err %v", len(raw), err)
	}
	if code, _ := get(t, "http://"+on.Addr()+"/healthz"); code != http.StatusOK {
		t.Errorf("pprof on: /healthz = %d", code)
	}
}
