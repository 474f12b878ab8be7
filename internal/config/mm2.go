package config

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// MM2Key is a MirrorMaker 2 property that the conversion did not map.
type MM2Key struct {
	Key    string `json:"key"`
	Value  string `json:"value"` // "<redacted>" for secrets
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// MM2Action is something to do before the converted config works: export
// a password the conversion did not copy, or convert a Java key store to
// the PEM files godwit reads.
type MM2Action struct {
	Cluster string `json:"cluster"`
	// Kind is "env" (set an environment variable) or "pem" (convert a
	// key store).
	Kind string `json:"kind"`
	// Env is the environment variable to set (kind env).
	Env string `json:"env,omitempty"`
	// What says, on one line, what to do and why.
	What string `json:"what"`
	// Commands are shell lines to run, in order. They never contain a
	// secret: passwords are read from the terminal or the environment.
	Commands []string `json:"commands"`
}

// MM2Conversion is the result of converting an mm2.properties file.
type MM2Conversion struct {
	// YAML is the godwit config. It passes Parse once the actions are
	// done (environment variables set, PEM files written).
	YAML []byte
	// Unmapped lists every MM2 key that has no godwit equivalent (or a
	// value that could not be mapped), sorted by key, each with why.
	Unmapped []MM2Key
	// Actions are the steps before godwit can use YAML.
	Actions []MM2Action
	// Notes are what the conversion decided that a reader must know
	// (omitted flows, unsupported authentication, naming caveats).
	Notes []string
	// Clusters and Flows count what YAML defines.
	Clusters, Flows int
}

// LoadMM2 reads and converts a MirrorMaker 2 properties file.
func LoadMM2(path string) (*MM2Conversion, error) {
	data, err := readInput(context.Background(), path, os.Stdin, "MM2 properties file not found; pass the path of your mm2.properties (connect-mirror-maker.properties)")
	if err != nil {
		return nil, err
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

var mm2Bools = []struct{ mm2, godwit string }{
	{"emit.heartbeats.enabled", "heartbeats"},
	{"sync.topic.configs.enabled", "sync_topic_configs"},
	{"sync.topic.acls.enabled", "sync_acls"},
	{"sync.group.offsets.enabled", "sync_group_offsets"},
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

// ConvertMM2 converts MirrorMaker 2 properties (connect-mirror-maker
// "dedicated mode" format) to godwit YAML. path is for messages only.
//
// Mapping, with MM2's precedence (a per-flow "A->B.key" over the global
// "key"; a per-cluster "A.key" over the global "key" for connection
// settings; the current name over the legacy one):
//   - clusters = a, b and a.bootstrap.servers become clusters.
//   - Connection security (mm2_security.go): security.protocol,
//     sasl.mechanism, sasl.jaas.config and the ssl.* key and trust
//     stores become each cluster's tls and sasl blocks. Passwords are
//     never copied: the YAML names an environment variable and Actions
//     says how to set it; Java key stores come with the commands that
//     convert them to PEM.
//   - A flow A->B is emitted for every pair with A->B.enabled = true, as
//     only those replicate in MM2; other pairs an "A->B.*" key mentions
//     are omitted, with a note.
//   - topics, topics.exclude (legacy topics.blacklist), groups,
//     groups.exclude (legacy groups.blacklist) and
//     config.properties.exclude (legacy config.properties.blacklist) are
//     comma-separated regex lists, copied as lists.
//   - replication.policy.class DefaultReplicationPolicy -> naming:
//     prefixed, IdentityReplicationPolicy -> naming: identical;
//     replication.policy.separator -> separator.
//   - sync.topic.configs.enabled, sync.topic.acls.enabled,
//     sync.group.offsets.enabled, emit.heartbeats.enabled, the intervals
//     above, replication.factor and the source consumer's
//     auto.offset.reset (-> start) map to their godwit fields.
//
// Only keys present in the file are written; anything left out takes
// godwit's default, which can differ from MM2's (godwit syncs group
// offsets and refreshes topics every 10s by default, MM2 does not sync
// offsets and refreshes every 600s). Every other key is reported in
// Unmapped with the reason (secret values redacted).
func ConvertMM2(path string, data []byte) (*MM2Conversion, error) {
	props, err := ParseProperties(path, data)
	if err != nil {
		return nil, err
	}
	cv := &mm2Converter{path: path, props: map[string]Property{}, used: map[string]bool{}, reasons: map[string]string{}}
	for _, p := range props {
		cv.props[p.Key] = p // last wins, as in Java
	}
	return cv.convert()
}

type mm2Converter struct {
	path     string
	props    map[string]Property
	used     map[string]bool
	reasons  map[string]string // unmapped keys decided during conversion
	aliases  []string
	defined  map[string]bool
	envNames map[string]bool
	// protocols is each cluster's security.protocol, for the reasons
	// of unused TLS and SASL keys.
	protocols map[string]string
	actions   []MM2Action
	notes     []string
}

func (cv *mm2Converter) errorf(key, format string, args ...any) error {
	return &Error{File: cv.path, Line: cv.props[key].Line, Path: key, Msg: fmt.Sprintf(format, args...)}
}

// unmap records that key is not mapped, and why. The first reason given
// for a key wins (a global key is judged by the first flow using it).
func (cv *mm2Converter) unmap(key, reason string) {
	if _, ok := cv.props[key]; !ok {
		return
	}
	cv.used[key] = true
	if _, ok := cv.reasons[key]; !ok {
		cv.reasons[key] = reason
	}
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

func (cv *mm2Converter) note(format string, args ...any) {
	cv.notes = append(cv.notes, fmt.Sprintf(format, args...))
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

// mm2Doc is the converted config before it is written, so it can be
// written twice: as the user gets it, and with the environment-dependent
// parts (password variables, PEM files still to be converted) replaced
// by stand-ins, to validate everything else now.
type mm2Doc struct {
	clusters []mm2Cluster
	flows    yaml.MapSlice
	comments yaml.CommentMap
}

type mm2Cluster struct {
	alias   string
	servers []string
	sec     *mm2Security
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
	cv.defined = map[string]bool{}
	cv.envNames = map[string]bool{}
	doc := &mm2Doc{comments: yaml.CommentMap{}}
	for _, a := range aliases {
		if cv.defined[a] {
			continue
		}
		cv.defined[a] = true
		cv.aliases = append(cv.aliases, a)
	}
	for _, a := range cv.aliases {
		key := a + ".bootstrap.servers"
		bp, ok := cv.lookup(key)
		if !ok {
			return nil, cv.errorf("clusters", "cluster %q has no %s; add it (host:port, comma-separated)", a, key)
		}
		servers := splitList(bp.Value)
		if len(servers) == 0 {
			return nil, cv.errorf(key, "is empty; list at least one host:port")
		}
		sec, err := cv.security(a, doc.comments)
		if err != nil {
			return nil, err
		}
		doc.clusters = append(doc.clusters, mm2Cluster{alias: a, servers: servers, sec: sec})
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
			cv.unmap(k, "not a SOURCE->TARGET key: MM2 names flows A->B with both aliases listed in clusters")
		case src == dst:
			cv.unmap(k, "source and target are the same cluster; MM2 never runs such a flow")
		case !cv.defined[src] || !cv.defined[dst]:
			cv.unmap(k, "cluster not listed in clusters = ..., so MM2 ignores this flow")
		default:
			pairs[src+"->"+dst] = true
		}
	}
	enabled := 0
	for _, name := range slices.Sorted(maps.Keys(pairs)) {
		on, err := cv.flowEnabled(name)
		if err != nil {
			return nil, err
		}
		if !on {
			cv.omitFlow(name)
			continue
		}
		enabled++
		f, err := cv.flow(name, doc.comments)
		if err != nil {
			return nil, err
		}
		doc.flows = append(doc.flows, yaml.MapItem{Key: name, Value: f})
	}
	if enabled == 0 && len(pairs) == 0 {
		cv.note("the file enables no A->B flow, so the converted config has clusters only; add a flow under flows: (e.g. %s)", exampleFlow(cv.aliases))
	}
	cv.identityNote(doc)
	// What is left: keys no mapping consumed.
	for k := range cv.props {
		if !cv.used[k] {
			cv.unmap(k, cv.reasonFor(k, enabled > 0))
		}
	}
	var unmapped []MM2Key
	for k, reason := range cv.reasons {
		p := cv.props[k]
		v := p.Value
		if secretKey.MatchString(k) {
			v = RedactedValue
		}
		unmapped = append(unmapped, MM2Key{Key: k, Value: v, Line: p.Line, Reason: reason})
	}
	sort.Slice(unmapped, func(i, j int) bool { return unmapped[i].Key < unmapped[j].Key })

	out, err := cv.write(doc, false)
	if err != nil {
		return nil, err
	}
	// The output must be a valid godwit config; check it here so a bad
	// MM2 value is reported against the MM2 file, not as broken YAML. The
	// check runs on a twin whose password variables and PEM files are
	// stand-ins: they only exist once the actions are done.
	twin, err := cv.write(doc, true)
	if err != nil {
		return nil, err
	}
	if _, err := Parse(cv.path+" (converted)", twin); err != nil {
		return nil, &Error{File: cv.path, Msg: fmt.Sprintf("converted config is not valid: %v; fix the MM2 value it names", err)}
	}
	return &MM2Conversion{YAML: out, Unmapped: unmapped, Actions: cv.actions, Notes: cv.notes, Clusters: len(doc.clusters), Flows: len(doc.flows)}, nil
}

func exampleFlow(aliases []string) string {
	if len(aliases) >= 2 {
		return aliases[0] + "->" + aliases[1]
	}
	return "primary->secondary"
}

// write renders doc. forCheck replaces what only exists once the actions
// are done (password variables, converted PEM files) by stand-ins.
func (cv *mm2Converter) write(doc *mm2Doc, forCheck bool) ([]byte, error) {
	var clusters yaml.MapSlice
	for _, c := range doc.clusters {
		v := yaml.MapSlice{{Key: "bootstrap_servers", Value: c.servers}}
		v = append(v, c.sec.yaml(forCheck)...)
		clusters = append(clusters, yaml.MapItem{Key: c.alias, Value: v})
	}
	m := yaml.MapSlice{{Key: "clusters", Value: clusters}}
	if len(doc.flows) > 0 {
		m = append(m, yaml.MapItem{Key: "flows", Value: doc.flows})
	}
	opts := []yaml.EncodeOption{yaml.IndentSequence(true)}
	if !forCheck && len(doc.comments) > 0 {
		opts = append(opts, yaml.WithComment(doc.comments))
	}
	out, err := yaml.MarshalWithOptions(m, opts...)
	if err != nil {
		return nil, &Error{File: cv.path, Msg: fmt.Sprintf("writing YAML: %v", err)}
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# godwit config converted from MirrorMaker 2 properties %s\n", cv.path)
	fmt.Fprintf(&buf, "# by godwit config from-mm2; settings not written here take godwit's defaults\n")
	if len(cv.actions) > 0 {
		fmt.Fprintf(&buf, "# before using it: %s (godwit config from-mm2 printed the commands)\n", actionSummary(cv.actions))
	}
	buf.Write(out)
	return buf.Bytes(), nil
}

func actionSummary(as []MM2Action) string {
	var env, pem []string
	for _, a := range as {
		switch a.Kind {
		case "env":
			env = append(env, a.Env)
		case "pem":
			pem = append(pem, a.Cluster)
		}
	}
	var parts []string
	if len(env) > 0 {
		parts = append(parts, "export "+strings.Join(env, ", "))
	}
	if len(pem) > 0 {
		parts = append(parts, "convert the key stores of "+strings.Join(dedupe(pem), ", ")+" to PEM")
	}
	return strings.Join(parts, "; ")
}

func dedupe(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// yamlPath quotes a map key for a goccy/go-yaml comment path.
func yamlPath(parts ...string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, p := range parts {
		b.WriteString(".'" + p + "'")
	}
	return b.String()
}

func (cv *mm2Converter) flowEnabled(name string) (bool, error) {
	p, ok := cv.lookup(name + ".enabled")
	if !ok {
		return false, nil
	}
	return cv.parseBool(p)
}

// omitFlow reports a flow MM2 does not run and the keys that configured
// it.
func (cv *mm2Converter) omitFlow(name string) {
	why := name + ".enabled is not set"
	if p, ok := cv.props[name+".enabled"]; ok {
		why = fmt.Sprintf("%s.enabled = %s", name, strings.TrimSpace(p.Value))
	}
	cv.note("flow %s omitted: MM2 does not run it (%s); to replicate it with godwit, add it under flows: with the same settings", name, why)
	for k := range cv.props {
		if strings.HasPrefix(k, name+".") && k != name+".enabled" {
			cv.unmap(k, "flow "+name+" is not enabled in MM2, so godwit omits it")
		}
	}
}

func (cv *mm2Converter) flow(name string, comments yaml.CommentMap) (yaml.MapSlice, error) {
	pre := name + "."
	src, _, _ := ParseFlowName(name)
	var f yaml.MapSlice
	add := func(k string, v any) { f = append(f, yaml.MapItem{Key: k, Value: v}) }

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
	// The source consumer's auto.offset.reset is where MM2 starts a
	// partition it has no offset for: godwit's start on a flow's first
	// run. Highest precedence first, as MM2 builds the consumer config.
	if p, ok := cv.lookup(src+".consumer.auto.offset.reset", pre+"consumer.auto.offset.reset", src+".auto.offset.reset"); ok {
		switch v := strings.ToLower(strings.TrimSpace(p.Value)); v {
		case StartEarliest, StartLatest:
			add("start", v)
		default:
			cv.unmap(p.Key, fmt.Sprintf("%q has no godwit start equivalent; godwit starts a flow's first run at earliest, latest or an RFC3339 time (start:)", p.Value))
		}
	}
	for _, iv := range mm2Intervals {
		if p, ok := cv.lookup(pre+iv.mm2, iv.mm2); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(p.Value), 10, 64)
			if err != nil {
				return nil, cv.errorf(p.Key, "%q is not a whole number of seconds", p.Value)
			}
			if n <= 0 {
				cv.unmap(p.Key, "a non-positive interval disables the feature in MM2; godwit has no equivalent (it keeps the default interval)")
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
	if len(f) == 0 {
		// MM2's defaults replicate every topic; say so rather than
		// emitting an empty flow.
		add("topics", []string{".*"})
		comments[yamlPath("flows", name, "topics")] = []*yaml.Comment{yaml.LineComment(" MM2's default: every topic")}
	}
	return f, nil
}

// identityNote warns about active-active with identical names: records
// MM2 copied carry no godwit provenance headers, so godwit cannot tell
// them from local writes.
func (cv *mm2Converter) identityNote(doc *mm2Doc) {
	identical := map[string]bool{}
	for _, it := range doc.flows {
		for _, kv := range it.Value.(yaml.MapSlice) {
			if kv.Key == "naming" && kv.Value == NamingIdentical {
				identical[it.Key.(string)] = true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(identical)) {
		src, dst, _ := ParseFlowName(name)
		rev := dst + "->" + src
		if identical[rev] && src < dst {
			cv.note("flows %s and %s both use identical names (active-active): godwit stops echoes with its provenance headers, but records MM2 copied carry none, so a godwit flow started from earliest would copy them back; start godwit's flows where MM2 stopped, not from earliest", name, rev)
		}
	}
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
