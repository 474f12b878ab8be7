package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

func (c *Config) validate(loc *locator) error {
	if len(c.Clusters) == 0 {
		return loc.errorf("clusters", "no clusters defined; add at least two, e.g. clusters: {primary: {bootstrap_servers: [\"127.0.0.1:19092\"]}, ...}")
	}
	for _, alias := range slices.Sorted(maps.Keys(c.Clusters)) {
		cl := c.Clusters[alias]
		p := "clusters." + alias
		if err := checkAlias(alias); err != nil {
			return loc.errorf(p, "%v", err)
		}
		if cl == nil || len(cl.BootstrapServers) == 0 {
			return loc.errorf(p, "bootstrap_servers is empty; list at least one host:port")
		}
		for i, s := range cl.BootstrapServers {
			if err := checkHostPort(s); err != nil {
				return loc.errorf(fmt.Sprintf("%s.bootstrap_servers[%d]", p, i), "%v", err)
			}
		}
		if err := cl.validateSecurity(loc, p); err != nil {
			return err
		}
		if err := cl.validateRegistry(loc, p); err != nil {
			return err
		}
	}
	if c.Cutover.Timeout < 0 {
		return loc.errorf("cutover.timeout", "timeout must be positive, got %s", c.Cutover.Timeout.D())
	}
	for _, name := range slices.Sorted(maps.Keys(c.Flows)) {
		f := c.Flows[name]
		p := "flows." + name
		if f == nil {
			return loc.errorf(p, "flow is empty; give it at least topics: [\".*\"]")
		}
		src, dst, err := ParseFlowName(name)
		if err != nil {
			return loc.errorf(p, "%v", err)
		}
		if src == dst {
			return loc.errorf(p, "flow replicates cluster %q into itself; source and target must differ, e.g. primary->secondary", src)
		}
		for _, alias := range []string{src, dst} {
			if _, ok := c.Clusters[alias]; !ok {
				return loc.errorf(p, "cluster %q is not defined under clusters: (defined: %s); define it or fix the flow name", alias, strings.Join(slices.Sorted(maps.Keys(c.Clusters)), ", "))
			}
		}
		f.Name, f.Source, f.Target = name, src, dst
		if err := f.compile(loc, p); err != nil {
			return err
		}
		c.validateFlowSecurity(f)
		if err := c.validateSchemas(loc, f, p); err != nil {
			return err
		}
	}
	return nil
}

func (f *Flow) compile(loc *locator, p string) error {
	var err error
	if f.topics, err = compileAll(loc, p+".topics", f.Topics); err != nil {
		return err
	}
	if f.topicsExclude, err = compileAll(loc, p+".topics_exclude", f.TopicsExclude); err != nil {
		return err
	}
	if f.groups, err = compileAll(loc, p+".groups", f.Groups); err != nil {
		return err
	}
	if f.groupsExclude, err = compileAll(loc, p+".groups_exclude", f.GroupsExclude); err != nil {
		return err
	}
	if _, err = compileAll(loc, p+".configs_exclude", f.ConfigsExclude); err != nil {
		return err
	}
	switch f.Naming {
	case NamingPrefixed, NamingIdentical:
	default:
		return loc.errorf(p+".naming", "%q is not a naming mode; use prefixed or identical", f.Naming)
	}
	if f.Naming == NamingPrefixed && (f.Separator == "" || strings.ContainsAny(f.Separator, " /")) {
		return loc.errorf(p+".separator", "separator %q is not usable in topic names; use \".\" or \"_\"", f.Separator)
	}
	switch f.Delivery {
	case DeliveryExactlyOnce, DeliveryAtLeastOnce:
	default:
		return loc.errorf(p+".delivery", "%q is not a delivery mode; use exactly-once or at-least-once", f.Delivery)
	}
	switch f.Compression {
	case CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd:
	default:
		return loc.errorf(p+".compression", "%q is not a compression codec; use none, gzip, snappy, lz4 or zstd", f.Compression)
	}
	switch f.Start {
	case StartEarliest, StartLatest:
	default:
		t, err := time.Parse(time.RFC3339, f.Start)
		if err != nil {
			return loc.errorf(p+".start", "%q is not a start position; use earliest, latest or an RFC3339 timestamp such as 2026-01-02T15:04:05Z", f.Start)
		}
		f.startTime = t
	}
	if f.Slots < 1 || f.Slots > 1024 {
		return loc.errorf(p+".slots", "slots must be between 1 and 1024, got %d", f.Slots)
	}
	if f.ReplicationFactor < 0 {
		return loc.errorf(p+".replication_factor", "replication_factor must be positive (or omitted for the target's default), got %d", f.ReplicationFactor)
	}
	if f.MaxBatchBytes < 1024 {
		return loc.errorf(p+".max_batch_bytes", "max_batch_bytes must be at least 1024, got %d", f.MaxBatchBytes)
	}
	if err := f.compileBandwidth(loc, p); err != nil {
		return err
	}
	if need := ByteSize(f.Slots) * MinSlotMemory; f.MemoryBudget < need {
		return loc.errorf(p+".memory_budget", "memory_budget %s gives each of the %d slots less than %s; set it to at least %s or lower slots", f.MemoryBudget, f.Slots, MinSlotMemory, need)
	}
	return nil
}

func compileAll(loc *locator, p string, exprs []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(exprs))
	for i, e := range exprs {
		// Compile the expression alone first so the error quotes what the
		// user wrote, not the anchored form.
		if _, err := regexp.Compile(e); err != nil {
			return nil, loc.errorf(fmt.Sprintf("%s[%d]", p, i), "invalid regex %q: %v; fix it (RE2 syntax, matched against the whole name)", e, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		// Full match, as MM2 and MSK Replicator treat their lists.
		re, err := regexp.Compile(`^(?:` + e + `)$`)
		if err != nil {
			return nil, loc.errorf(fmt.Sprintf("%s[%d]", p, i), "invalid regex %q: %v; fix it (RE2 syntax, matched against the whole name)", e, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		out = append(out, re)
	}
	return out, nil
}

// maxAliasLen keeps the internal topic names built from two aliases
// ("godwit.<A>-<B>.progress.internal") under Kafka's 249 characters.
const maxAliasLen = 100

// checkAlias restricts cluster aliases to the characters Kafka allows in
// topic names (ASCII letters, digits, '.', '_', '-'): aliases become part
// of internal topic names, prefixed topic names and transactional ids.
func checkAlias(alias string) error {
	if alias == "" {
		return fmt.Errorf("cluster alias is empty; name the cluster, e.g. primary")
	}
	if len(alias) > maxAliasLen {
		return fmt.Errorf("cluster alias %q is %d characters; use at most %d", alias, len(alias), maxAliasLen)
	}
	if strings.Contains(alias, "->") {
		return fmt.Errorf("cluster alias %q may not contain \"->\" (it separates a flow's source and target)", alias)
	}
	if alias == "." || alias == ".." {
		return fmt.Errorf("cluster alias %q is not allowed (Kafka refuses topic names . and ..)", alias)
	}
	for i, r := range alias {
		if r < utf8.RuneSelf && topicChar(byte(r)) {
			continue
		}
		what := fmt.Sprintf("character %q", r)
		if r == utf8.RuneError {
			what = "U+FFFD (invalid UTF-8 in the file)"
			if _, n := utf8.DecodeRuneInString(alias[i:]); n == 1 {
				what = fmt.Sprintf("invalid UTF-8 byte 0x%02x", alias[i])
			}
		}
		return fmt.Errorf("cluster alias %q has %s at byte %d; aliases become part of topic names, so use only ASCII letters, digits, '.', '_' and '-'", alias, what, i)
	}
	return nil
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// checkHostPort validates a bootstrap server: host:port with a port
// between 1 and 65535 and a host that is an IP address or a DNS name.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (%v); write it as host:9092, or [::1]:9092 for IPv6", s, strings.TrimPrefix(err.Error(), "address "+s+": "))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
		return fmt.Errorf("%q: port %q is not a number between 1 and 65535", s, port)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; write it as host:%s", s, port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if strings.HasPrefix(s, "[") {
		return fmt.Errorf("%q: %q in brackets is not an IPv6 address", s, host)
	}
	if !validHostname(host) {
		return fmt.Errorf("%q: host %q is not a valid host name or IP address (letters, digits, '-' and '.', labels of at most 63 characters)", s, host)
	}
	return nil
}

// validHostname accepts DNS names (RFC 1123 labels; '_' too, as some
// internal DNS names use it), at most 253 characters.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
