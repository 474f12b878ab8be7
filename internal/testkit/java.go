package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MM2Libs returns the MirrorMaker 2 / Kafka Connect classpath folder
// scripts/kafka.sh caches (or $GODWIT_CONNECT_LIBS), skipping the test
// when it or java is missing: tests never fetch jars.
func MM2Libs(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java on PATH: MirrorMaker 2 tests need a JDK 17+")
	}
	dir, err := connectLibs()
	if err != nil {
		t.Skipf("no MirrorMaker 2 classpath: %v", err)
	}
	return dir
}

// RunJava compiles and runs one Java source file (java's single-file
// launcher) on the classpath libs with args, and returns its stdout.
// A failure, or no exit within timeout, fails the test with the output.
func RunJava(t testing.TB, libs, source string, timeout time.Duration, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	name := "Main.java"
	if i := strings.Index(source, "public class "); i >= 0 {
		f := strings.Fields(source[i+len("public class "):])
		if len(f) > 0 {
			name = strings.TrimSuffix(f[0], "{") + ".java"
		}
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	// log4j2 without a configuration prints a warning per run; a
	// properties file keeping everything but errors quiet avoids it.
	l4j := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(l4j, []byte("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = STDERR\nappender.stderr.type = Console\nappender.stderr.name = STDERR\nappender.stderr.target = SYSTEM_ERR\nappender.stderr.layout.type = PatternLayout\nappender.stderr.layout.pattern = %p %c: %m%n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", append([]string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dlog4j2.configurationFile=" + l4j, "-cp", filepath.Join(libs, "*"), path}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("java %s %v: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
