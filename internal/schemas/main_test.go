package schemas_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/godwit/godwit/internal/testkit"
)

// One disposable registry (a target with IDs of its own) serves every test
// of the package that needs one: each starts in 8-25 s on the shared box.
var (
	ownOnce    sync.Once
	ownURL     string
	ownSkip    string
	ownCleanup []func()
)

type sharedTB struct {
	testing.TB
	skip string
}

func (s *sharedTB) Cleanup(f func())          { ownCleanup = append(ownCleanup, f) }
func (s *sharedTB) Skipf(f string, a ...any)  { s.skip = fmt.Sprintf(f, a...); panic(s) }
func (s *sharedTB) Fatalf(f string, a ...any) { s.skip = "FATAL: " + fmt.Sprintf(f, a...); panic(s) }
func (s *sharedTB) Errorf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
func (s *sharedTB) Logf(f string, a ...any)   {}
func (s *sharedTB) Helper()                   {}
func (s *sharedTB) TempDir() string {
	d, err := os.MkdirTemp("", "godwit-registry-")
	if err != nil {
		panic(err)
	}
	ownCleanup = append(ownCleanup, func() { os.RemoveAll(d) })
	return d
}

// ownRegistry is the package's disposable registry.
func ownRegistry(t *testing.T) string {
	t.Helper()
	ownOnce.Do(func() {
		st := &sharedTB{TB: t}
		defer func() {
			if r := recover(); r != nil {
				if s, ok := r.(*sharedTB); ok {
					ownSkip = s.skip
					return
				}
				panic(r)
			}
		}()
		ownURL = testkit.DisposableRegistry(st)
	})
	switch {
	case len(ownSkip) > 6 && ownSkip[:6] == "FATAL:":
		t.Fatal(ownSkip)
	case ownSkip != "":
		t.Skip(ownSkip)
	}
	return ownURL
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(ownCleanup) - 1; i >= 0; i-- {
		ownCleanup[i]()
	}
	os.Exit(code)
}
