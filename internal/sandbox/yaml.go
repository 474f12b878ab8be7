package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/godwit/godwit/internal/config"
)

// WriteConfig writes a ready godwit config for the sandbox: every cluster
// with its bootstrap_servers, one flow from the first cluster to the second
// replicating all topics with prefixed naming and exactly-once delivery, and
// the http listen address. The output passes config.Parse.
func (s *Sandbox) WriteConfig(w io.Writer) error {
	if len(s.clusters) < 2 {
		return fmt.Errorf("sandbox: a godwit config needs two clusters, have %d", len(s.clusters))
	}
	var b bytes.Buffer
	b.WriteString("# godwit config for the sandbox clusters (godwit sandbox).\n")
	b.WriteString("clusters:\n")
	for _, c := range s.clusters {
		q := make([]string, len(c.Addrs))
		for i, a := range c.Addrs {
			q[i] = strconv.Quote(a)
		}
		fmt.Fprintf(&b, "  %s:\n    # cluster id %s\n    bootstrap_servers: [%s]\n", c.Name, c.ID, strings.Join(q, ", "))
	}
	src, dst := s.clusters[0].Name, s.clusters[1].Name
	b.WriteString("flows:\n")
	fmt.Fprintf(&b, "  %s->%s:\n", src, dst)
	fmt.Fprintf(&b, "    topics: [%q]\n", ".*")
	fmt.Fprintf(&b, "    naming: %s\n", config.NamingPrefixed)
	fmt.Fprintf(&b, "    delivery: %s\n", config.DeliveryExactlyOnce)
	fmt.Fprintf(&b, "http:\n  listen: %q\n", s.opts.HTTPListen)
	_, err := w.Write(b.Bytes())
	return err
}
