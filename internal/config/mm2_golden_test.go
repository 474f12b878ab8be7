package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/mm2 golden files from the conversion's output")

// secretsIn returns every password-like value of a properties file
// (values of keys naming a password, and password="..." in JAAS
// configs), so a test can check that none of them is printed.
func secretsIn(t *testing.T, path string, data []byte) []string {
	t.Helper()
	props, err := ParseProperties(path, data)
	if err != nil {
		t.Fatal(err)
	}
	jaasPW := regexp.MustCompile(`password="([^"]+)"`)
	var out []string
	for _, p := range props {
		if strings.Contains(p.Key, "password") && p.Value != "" {
			out = append(out, p.Value)
		}
		for _, m := range jaasPW.FindAllStringSubmatch(p.Value, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// TestMM2Golden converts each realistic MM2 file in testdata/mm2 and
// compares the YAML and the report (stderr) with the golden files
// NAME.yaml and NAME.report; go test -run TestMM2Golden -update rewrites
// them. Every conversion must also be a valid config once its actions are
// done, and no password of the file may appear in any output.
func TestMM2Golden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "mm2", "*.properties"))
	if err != nil || len(files) < 4 {
		t.Fatalf("golden inputs: %v %v", files, err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".properties")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := ConvertMM2(filepath.Base(in), data)
			if err != nil {
				t.Fatal(err)
			}
			var report bytes.Buffer
			if err := conv.WriteReport(&report, filepath.Base(in)); err != nil {
				t.Fatal(err)
			}
			js, err := json.Marshal(conv)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secretsIn(t, in, data) {
				for what, out := range map[string][]byte{"yaml": conv.YAML, "report": report.Bytes(), "json": js} {
					if bytes.Contains(out, []byte(s)) {
						t.Errorf("password %q of %s appears in the %s output", s, in, what)
					}
				}
			}
			for _, u := range conv.Unmapped {
				if u.Reason == "" {
					t.Errorf("unmapped %s has no reason", u.Key)
				}
			}
			golden(t, filepath.Join("testdata", "mm2", name+".yaml"), conv.YAML)
			golden(t, filepath.Join("testdata", "mm2", name+".report"), report.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestMM2Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run TestMM2Golden -update rewrites it after review):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
