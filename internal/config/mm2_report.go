package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteReport writes what a person converting file must know, for
// stderr: the notes, the steps before godwit can use the config (with
// the commands), and every unmapped key with its reason. It holds no
// secret.
func (c *MM2Conversion) WriteReport(w io.Writer, file string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "godwit: converted %s: %s, %s\n", file, plural(c.Clusters, "cluster"), plural(c.Flows, "flow"))
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(c.Actions) > 0 {
		b.WriteString("before godwit can use the converted config:\n")
		for i, a := range c.Actions {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, a.What)
			for _, cmd := range a.Commands {
				fmt.Fprintf(&b, "       %s\n", cmd)
			}
		}
	}
	for _, u := range c.Unmapped {
		v := u.Value
		if strings.ContainsAny(v, "\n\r\t") {
			v = strconv.Quote(v) // keep one key per line
		}
		fmt.Fprintf(&b, "unmapped MM2 key: %s = %s (%s:%d): %s\n", u.Key, v, file, u.Line, u.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
