package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
)

// Property is one key = value entry of a Java .properties file.
type Property struct {
	Key   string
	Value string
	Line  int // line the entry starts on
}

// ParseProperties reads Java .properties text as java.util.Properties.load
// does: '#' and '!' comment lines, "key=value", "key: value" and
// "key value" separators, trailing-backslash line continuations (leading
// blanks of the continued line dropped) and escapes (\t \n \r \f \uXXXX,
// \X for any other X). Entries come back in file order; a repeated key
// appears once per occurrence (the last one wins, as in Java).
func ParseProperties(path string, data []byte) ([]Property, error) {
	if !utf8.Valid(data) {
		// Java 9+ reads .properties as UTF-8 and falls back to ISO-8859-1.
		runes := make([]rune, len(data))
		for i, b := range data {
			runes[i] = rune(b)
		}
		data = []byte(string(runes))
	}
	lines := splitLines(string(data))
	var out []Property
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		// Join continuation lines: an odd number of trailing backslashes.
		for endsWithContinuation(line) && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimLeft(lines[i], " \t\f")
		}
		if endsWithContinuation(line) {
			line = line[:len(line)-1] // continuation at end of file
		}
		rawKey, rawValue := splitKeyValue(line)
		key, err := unescapeProperty(rawKey)
		if err != nil {
			return nil, &Error{File: path, Line: start, Msg: fmt.Sprintf("key %q: %v; write \\u followed by four hex digits", rawKey, err)}
		}
		value, err := unescapeProperty(rawValue)
		if err != nil {
			return nil, &Error{File: path, Line: start, Path: key, Msg: fmt.Sprintf("%v; write \\u followed by four hex digits", err)}
		}
		out = append(out, Property{Key: key, Value: value, Line: start})
	}
	return out, nil
}

func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

func endsWithContinuation(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line at the first unescaped '=', ':' or
// blank; blanks around the separator are dropped.
func splitKeyValue(line string) (key, value string) {
	end := len(line)
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			end = i
			break
		}
	}
	key, rest := line[:end], line[end:]
	rest = strings.TrimLeft(rest, " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\u escape %q", s[i-1:])
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\u escape %q", s[i-1:i+5])
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// MM2Key is a MirrorMaker 2 property that the conversion did not map.
type MM2Key struct {
	Key    string `json:"key"`
	Value  string `json:"value"` // "<redacted>" for secrets
	Line   int    `json:"line"`
	Reason string `json:"reason,omitempty"`
}

// MM2Conversion is the result of converting an mm2.properties file.
type MM2Conversion struct {
	// YAML is the godwit config; it passes Parse.
	YAML []byte
	// Unmapped lists every MM2 key that has no godwit equivalent (or a
	// value that could not be mapped), sorted by key.
	Unmapped []MM2Key
}

// LoadMM2 reads and converts a MirrorMaker 2 properties file.
func LoadMM2(path string) (*MM2Conversion, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &Error{File: path, Msg: "MM2 properties file not found; pass the path of your mm2.properties (connect-mirror-maker.properties)"}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return ConvertMM2(path, data)
}

// secretKey matches property names whose values must not be echoed.
var secretKey = regexp.MustCompile(`(?i)password|secret|jaas|token|credential|\.key$|apikey|api\.key`)

// mm2Intervals are the MM2 "*.interval.seconds" key and its godwit field.
var mm2Intervals = []struct{ mm2, godwit string }{
	{"emit.checkpoints.interval.seconds", "checkpoint_interval"},
	{"refresh.topics.interval.seconds", "refresh_interval"},
	{"emit.heartbeats.interval.seconds", "heartbeat_interval"},
}

// mm2Lists are the comma-separated regex lists, current name first.
var mm2Lists = []struct {
	godwit string
	keys   []string
}{
	{"topics", []string{"topics"}},
	{"topics_exclude", []string{"topics.exclude", "topics.blacklist"}},
	{"groups", []string{"groups"}},
	{"groups_exclude", []string{"groups.exclude", "groups.blacklist"}},
	{"configs_exclude", []string{"config.properties.exclude", "config.properties.blacklist"}},
}

// mm2FlowKeys are the global keys that apply to every flow.
var mm2FlowKeys = func() map[string]bool {
	m := map[string]bool{"replication.policy.class": true, "replication.policy.separator": true, "replication.factor": true}
	for _, l := range mm2Lists {
		for _, k := range l.keys {
			m[k] = true
		}
	}
	for _, iv := range mm2Intervals {
		m[iv.mm2] = true
	}
	for _, b := range mm2Bools {
		m[b.mm2] = true
	}
	return m
}()

var mm2Bools = []struct{ mm2, godwit string }{
	{"emit.heartbeats.enabled", "heartbeats"},
	{"sync.topic.configs.enabled", "sync_topic_configs"},
	{"sync.topic.acls.enabled", "sync_acls"},
	{"sync.group.offsets.enabled", "sync_group_offsets"},
}

// ConvertMM2 converts MirrorMaker 2 properties (connect-mirror-maker
// "dedicated mode" format) to godwit YAML. path is for messages only.
//
// Mapping:
//   - clusters = a, b and a.bootstrap.servers become clusters.
//   - A flow A->B is emitted for every pair with at least one "A->B.*"
//     key. As in MM2, a pair only replicates when A->B.enabled = true; any
//     other emitted pair gets enabled: false, so its settings survive and
//     it can be switched on. Pairs MM2 never mentions are omitted.
//   - topics, topics.exclude (legacy topics.blacklist), groups,
//     groups.exclude (legacy groups.blacklist) and
//     config.properties.exclude (legacy config.properties.blacklist) are
//     comma-separated regex lists, copied as lists. A per-flow "A->B.key"
//     overrides the global key, and the current name overrides the legacy.
//   - replication.policy.class DefaultReplicationPolicy -> naming:
//     prefixed, IdentityReplicationPolicy -> naming: identical; any other
//     class is reported unmapped. replication.policy.separator ->
//     separator.
//   - sync.topic.configs.enabled, sync.topic.acls.enabled,
//     sync.group.offsets.enabled, emit.heartbeats.enabled,
//     emit.checkpoints.interval.seconds, refresh.topics.interval.seconds,
//     emit.heartbeats.interval.seconds and replication.factor map to their
//     godwit fields.
//
// Only keys present in the file are written; anything left out takes
// godwit's default, which can differ from MM2's (godwit syncs group
// offsets and refreshes topics every 10s by default, MM2 does not sync
// offsets and refreshes every 600s). Every other key, including cluster
// client settings such as a.security.protocol, is reported in Unmapped
// (secret values redacted).
func ConvertMM2(path string, data []byte) (*MM2Conversion, error) {
	props, err := ParseProperties(path, data)
	if err != nil {
		return nil, err
	}
	cv := &mm2Converter{path: path, props: map[string]Property{}, used: map[string]bool{}}
	for _, p := range props {
		cv.props[p.Key] = p // last wins, as in Java
	}
	return cv.convert()
}

type mm2Converter struct {
	path     string
	props    map[string]Property
	used     map[string]bool
	unmapped []MM2Key
}

func (cv *mm2Converter) errorf(key, format string, args ...any) error {
	return &Error{File: cv.path, Line: cv.props[key].Line, Path: key, Msg: fmt.Sprintf(format, args...)}
}

func (cv *mm2Converter) unmap(key, reason string) {
	cv.used[key] = true
	for _, u := range cv.unmapped {
		if u.Key == key {
			return // a global key reported for an earlier flow
		}
	}
	p := cv.props[key]
	v := p.Value
	if secretKey.MatchString(key) {
		v = "<redacted>"
	}
	cv.unmapped = append(cv.unmapped, MM2Key{Key: key, Value: v, Line: p.Line, Reason: reason})
}

// lookup returns the first of keys present, marking every present one as
// used (the overridden ones are consumed by the override).
func (cv *mm2Converter) lookup(keys ...string) (Property, bool) {
	var found Property
	ok := false
	for _, k := range keys {
		if p, present := cv.props[k]; present {
			cv.used[k] = true
			if !ok {
				found, ok = p, true
			}
		}
	}
	return found, ok
}

func splitList(s string) []string {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (cv *mm2Converter) convert() (*MM2Conversion, error) {
	cp, ok := cv.props["clusters"]
	if !ok {
		return nil, &Error{File: cv.path, Msg: "no clusters = ... entry; an MM2 file lists its cluster aliases, e.g. clusters = primary, secondary"}
	}
	cv.used["clusters"] = true
	aliases := splitList(cp.Value)
	if len(aliases) == 0 {
		return nil, cv.errorf("clusters", "lists no cluster aliases; write e.g. clusters = primary, secondary")
	}
	defined := map[string]bool{}
	var clusters yaml.MapSlice
	for _, a := range aliases {
		if defined[a] {
			continue
		}
		defined[a] = true
		key := a + ".bootstrap.servers"
		bp, ok := cv.lookup(key)
		if !ok {
			return nil, cv.errorf("clusters", "cluster %q has no %s; add it (host:port, comma-separated)", a, key)
		}
		servers := splitList(bp.Value)
		if len(servers) == 0 {
			return nil, cv.errorf(key, "is empty; list at least one host:port")
		}
		clusters = append(clusters, yaml.MapItem{Key: a, Value: yaml.MapSlice{{Key: "bootstrap_servers", Value: servers}}})
	}

	// Flows: every defined pair mentioned by an "A->B." key.
	pairs := map[string]bool{}
	for k := range cv.props {
		name, _, ok := strings.Cut(k, ".")
		if !ok || !strings.Contains(name, "->") {
			continue
		}
		src, dst, err := ParseFlowName(name)
		switch {
		case err != nil:
			cv.unmap(k, "not a SOURCE->TARGET key")
		case src == dst:
			cv.unmap(k, "source and target are the same cluster")
		case !defined[src] || !defined[dst]:
			cv.unmap(k, "cluster not listed in clusters")
		default:
			pairs[src+"->"+dst] = true
		}
	}
	var flows yaml.MapSlice
	for _, name := range sortedKeys(pairs) {
		f, err := cv.flow(name)
		if err != nil {
			return nil, err
		}
		flows = append(flows, yaml.MapItem{Key: name, Value: f})
	}
	// Global flow settings are only read for emitted flows.
	for k := range cv.props {
		if !cv.used[k] {
			reason := ""
			if len(pairs) == 0 && mm2FlowKeys[k] {
				reason = "no A->B flow in the file to apply it to"
			}
			cv.unmap(k, reason)
		}
	}
	sort.Slice(cv.unmapped, func(i, j int) bool { return cv.unmapped[i].Key < cv.unmapped[j].Key })

	doc := yaml.MapSlice{{Key: "clusters", Value: clusters}}
	if len(flows) > 0 {
		doc = append(doc, yaml.MapItem{Key: "flows", Value: flows})
	}
	out, err := yaml.MarshalWithOptions(doc, yaml.IndentSequence(true))
	if err != nil {
		return nil, &Error{File: cv.path, Msg: fmt.Sprintf("writing YAML: %v", err)}
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# godwit config converted from MirrorMaker 2 properties %s\n", cv.path)
	fmt.Fprintf(&buf, "# by godwit config from-mm2; settings not written here take godwit's defaults\n")
	buf.Write(out)
	// The output must be a valid godwit config; check it here so a bad
	// MM2 value is reported against the MM2 file, not as broken YAML.
	if _, err := Parse(cv.path+" (converted)", buf.Bytes()); err != nil {
		return nil, &Error{File: cv.path, Msg: fmt.Sprintf("converted config is not valid: %v; fix the MM2 value it names", err)}
	}
	return &MM2Conversion{YAML: buf.Bytes(), Unmapped: cv.unmapped}, nil
}

func (cv *mm2Converter) flow(name string) (yaml.MapSlice, error) {
	pre := name + "."
	var f yaml.MapSlice
	add := func(k string, v any) { f = append(f, yaml.MapItem{Key: k, Value: v}) }

	enabled := false
	if p, ok := cv.lookup(pre + "enabled"); ok {
		b, err := cv.parseBool(p)
		if err != nil {
			return nil, err
		}
		enabled = b
	}
	add("enabled", enabled)

	for _, l := range mm2Lists {
		var keys []string
		for _, k := range l.keys {
			keys = append(keys, pre+k)
		}
		keys = append(keys, l.keys...)
		if p, ok := cv.lookup(keys...); ok {
			list := splitList(p.Value)
			for _, e := range list {
				if _, err := regexp.Compile(e); err != nil {
					return nil, cv.errorf(p.Key, "invalid regex %q: %v; fix it (MM2 lists are comma-separated regexes)", e, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				}
			}
			add(l.godwit, list)
		}
	}

	if p, ok := cv.lookup(pre+"replication.policy.class", "replication.policy.class"); ok {
		class := strings.TrimSpace(p.Value)
		switch class[strings.LastIndex(class, ".")+1:] {
		case "DefaultReplicationPolicy":
			add("naming", NamingPrefixed)
		case "IdentityReplicationPolicy":
			add("naming", NamingIdentical)
		default:
			cv.unmap(p.Key, "custom replication policy; godwit supports prefixed (DefaultReplicationPolicy) and identical (IdentityReplicationPolicy) naming, defaulting to prefixed")
		}
	}
	if p, ok := cv.lookup(pre+"replication.policy.separator", "replication.policy.separator"); ok {
		add("separator", p.Value)
	}
	for _, iv := range mm2Intervals {
		if p, ok := cv.lookup(pre+iv.mm2, iv.mm2); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(p.Value), 10, 64)
			if err != nil {
				return nil, cv.errorf(p.Key, "%q is not a whole number of seconds", p.Value)
			}
			if n <= 0 {
				cv.unmap(p.Key, "a non-positive interval disables the feature in MM2; godwit has no equivalent")
				continue
			}
			add(iv.godwit, fmt.Sprintf("%ds", n))
		}
	}
	for _, b := range mm2Bools {
		if p, ok := cv.lookup(pre+b.mm2, b.mm2); ok {
			v, err := cv.parseBool(p)
			if err != nil {
				return nil, err
			}
			add(b.godwit, v)
		}
	}
	if p, ok := cv.lookup(pre+"replication.factor", "replication.factor"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(p.Value))
		if err != nil {
			return nil, cv.errorf(p.Key, "%q is not a whole number", p.Value)
		}
		if n > 0 {
			add("replication_factor", n)
		} // -1: the broker default, which is godwit's default too
	}
	return f, nil
}

func (cv *mm2Converter) parseBool(p Property) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(p.Value)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, cv.errorf(p.Key, "%q is not true or false", p.Value)
}
