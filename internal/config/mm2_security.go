package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// mm2Security is one cluster's converted tls and sasl blocks.
type mm2Security struct {
	tls  *mm2TLS
	sasl yaml.MapSlice
	// passwordEnv is the variable the SASL password is read from; the
	// password itself is never copied.
	passwordEnv string
}

type mm2TLS struct {
	caFile, certFile, keyFile string
}

// yaml renders the blocks. forCheck stands in for what exists only once
// the actions are done: the password variable and the PEM files.
func (s *mm2Security) yaml(forCheck bool) yaml.MapSlice {
	var out yaml.MapSlice
	if t := s.tls; t != nil {
		var v yaml.MapSlice
		file := func(k, path string) {
			if path == "" {
				return
			}
			if forCheck {
				path = os.DevNull
			}
			v = append(v, yaml.MapItem{Key: k, Value: path})
		}
		file("ca_file", t.caFile)
		file("cert_file", t.certFile)
		file("key_file", t.keyFile)
		if len(v) == 0 {
			v = yaml.MapSlice{{Key: "enabled", Value: true}}
		}
		out = append(out, yaml.MapItem{Key: "tls", Value: v})
	}
	if s.sasl != nil {
		v := append(yaml.MapSlice(nil), s.sasl...)
		if s.passwordEnv != "" {
			if forCheck {
				v = append(v, yaml.MapItem{Key: "password", Value: "stand-in"})
			} else {
				v = append(v, yaml.MapItem{Key: "password_env", Value: s.passwordEnv})
			}
		}
		out = append(out, yaml.MapItem{Key: "sasl", Value: v})
	}
	return out
}

// Kafka's client security settings, shared by every MM2 client of a
// cluster (godwit has one connection setting per cluster).
const (
	protoPlaintext     = "PLAINTEXT"
	protoSSL           = "SSL"
	protoSASLPlaintext = "SASL_PLAINTEXT"
	protoSASLSSL       = "SASL_SSL"
)

var mm2ClientRoles = []string{"producer.", "consumer.", "admin."}

// clusterGet returns cluster alias's value of a client setting with MM2's
// precedence: "alias.key" over the global "key". Role-specific copies
// ("alias.consumer.key", ...) are used only when neither exists; one that
// disagrees with the value used is reported, since godwit's clients of a
// cluster share one setting.
func (cv *mm2Converter) clusterGet(alias, key string) (Property, bool) {
	p, ok := cv.lookup(alias+"."+key, key)
	for _, r := range mm2ClientRoles {
		rk := alias + "." + r + key
		rp, present := cv.props[rk]
		if !present {
			continue
		}
		switch {
		case !ok:
			p, ok = rp, true
			cv.used[rk] = true
		case strings.TrimSpace(rp.Value) == strings.TrimSpace(p.Value):
			cv.used[rk] = true
		default:
			cv.unmap(rk, fmt.Sprintf("godwit uses one connection setting per cluster for all its clients; %s was used instead", p.Key))
		}
	}
	return p, ok
}

// security converts cluster alias's security.protocol, SASL and TLS
// settings.
func (cv *mm2Converter) security(alias string, comments yaml.CommentMap) (*mm2Security, error) {
	s := &mm2Security{}
	proto := protoPlaintext
	pp, ok := cv.clusterGet(alias, "security.protocol")
	if ok {
		proto = strings.ToUpper(strings.TrimSpace(pp.Value))
	}
	switch proto {
	case protoPlaintext, protoSSL, protoSASLPlaintext, protoSASLSSL:
	default:
		return nil, cv.errorf(pp.Key, "%q is not a Kafka security.protocol; use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", pp.Value)
	}
	if cv.protocols == nil {
		cv.protocols = map[string]string{}
	}
	cv.protocols[alias] = proto
	if proto == protoSSL || proto == protoSASLSSL {
		t, err := cv.tls(alias, comments)
		if err != nil {
			return nil, err
		}
		s.tls = t
	}
	if proto == protoSASLPlaintext || proto == protoSASLSSL {
		if err := cv.sasl(alias, s, comments); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// tls converts the trust store (brokers' CAs) and key store (client
// certificate, mutual TLS). godwit reads PEM files; a JKS or PKCS12 store
// gets the commands that convert it.
func (cv *mm2Converter) tls(alias string, comments yaml.CommentMap) (*mm2TLS, error) {
	t := &mm2TLS{}
	if p, ok := cv.clusterGet(alias, "ssl.truststore.location"); ok && strings.TrimSpace(p.Value) != "" {
		loc := strings.TrimSpace(p.Value)
		typ := cv.storeType(alias, "ssl.truststore.type")
		cv.clusterGet(alias, "ssl.truststore.password") // needed only to convert the store; never copied
		if typ == "PEM" {
			t.caFile = loc
		} else {
			t.caFile = pemSibling(loc, "-ca.pem")
			p12 := loc
			var cmds []string
			if typ != "PKCS12" {
				p12 = pemSibling(loc, ".p12")
				cmds = append(cmds, fmt.Sprintf("keytool -importkeystore -srckeystore %s -srcstoretype %s -destkeystore %s -deststoretype PKCS12", shq(loc), typ, shq(p12)))
			}
			cmds = append(cmds, fmt.Sprintf("openssl pkcs12 -in %s -nokeys -out %s", shq(p12), shq(t.caFile)))
			cv.actions = append(cv.actions, MM2Action{Cluster: alias, Kind: "pem",
				What:     fmt.Sprintf("cluster %s: convert the %s trust store %s (%s) to the PEM CA bundle %s that godwit reads (each tool asks for the store password)", alias, typ, loc, p.Key, t.caFile),
				Commands: cmds})
			comments[yamlPath("clusters", alias, "tls", "ca_file")] = []*yaml.Comment{yaml.LineComment(" from " + typ + " trust store " + loc + "; convert it first (commands printed by from-mm2)")}
		}
	}
	if p, ok := cv.clusterGet(alias, "ssl.keystore.location"); ok && strings.TrimSpace(p.Value) != "" {
		loc := strings.TrimSpace(p.Value)
		typ := cv.storeType(alias, "ssl.keystore.type")
		cv.clusterGet(alias, "ssl.keystore.password")
		_, keyPassword := cv.clusterGet(alias, "ssl.key.password")
		switch {
		case typ == "PEM" && !keyPassword:
			t.certFile, t.keyFile = loc, loc
		case typ == "PEM":
			t.certFile, t.keyFile = loc, pemSibling(loc, "-key.pem")
			cv.actions = append(cv.actions, MM2Action{Cluster: alias, Kind: "pem",
				What:     fmt.Sprintf("cluster %s: godwit needs the client key of %s unencrypted; write it to %s (openssl asks for ssl.key.password) and keep it private", alias, loc, t.keyFile),
				Commands: []string{fmt.Sprintf("openssl pkey -in %s -out %s", shq(loc), shq(t.keyFile)), "chmod 600 " + shq(t.keyFile)}})
		default:
			t.certFile, t.keyFile = pemSibling(loc, "-cert.pem"), pemSibling(loc, "-key.pem")
			p12 := loc
			var cmds []string
			if typ != "PKCS12" {
				p12 = pemSibling(loc, ".p12")
				cmds = append(cmds, fmt.Sprintf("keytool -importkeystore -srckeystore %s -srcstoretype %s -destkeystore %s -deststoretype PKCS12", shq(loc), typ, shq(p12)))
			}
			cmds = append(cmds,
				fmt.Sprintf("openssl pkcs12 -in %s -clcerts -nokeys -out %s", shq(p12), shq(t.certFile)),
				fmt.Sprintf("openssl pkcs12 -in %s -nocerts -nodes -out %s", shq(p12), shq(t.keyFile)),
				"chmod 600 "+shq(t.keyFile))
			cv.actions = append(cv.actions, MM2Action{Cluster: alias, Kind: "pem",
				What:     fmt.Sprintf("cluster %s: convert the %s key store %s (%s) to the PEM client certificate %s and key %s that godwit reads (each tool asks for the store password)", alias, typ, loc, p.Key, t.certFile, t.keyFile),
				Commands: cmds})
			comments[yamlPath("clusters", alias, "tls", "cert_file")] = []*yaml.Comment{yaml.LineComment(" from " + typ + " key store " + loc + "; convert it first (commands printed by from-mm2)")}
		}
	}
	if p, ok := cv.clusterGet(alias, "ssl.endpoint.identification.algorithm"); ok {
		if v := strings.TrimSpace(p.Value); v == "" {
			cv.unmap(p.Key, fmt.Sprintf("MM2 did not verify the brokers' host names; godwit always does: connect by a name their certificates carry, or set clusters.%s.tls.server_name", alias))
		} else if !strings.EqualFold(v, "https") {
			cv.unmap(p.Key, "godwit verifies host names as https does; other algorithms have no equivalent")
		}
	}
	return t, nil
}

func (cv *mm2Converter) storeType(alias, key string) string {
	typ := "JKS" // Kafka's default
	if p, ok := cv.clusterGet(alias, key); ok && strings.TrimSpace(p.Value) != "" {
		typ = strings.ToUpper(strings.TrimSpace(p.Value))
	}
	return typ
}

// pemSibling names the converted file next to a key store: the store's
// name without its extension, plus suffix.
func pemSibling(loc, suffix string) string {
	dir, base := filepath.Split(loc)
	if ext := filepath.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return dir + base + suffix
}

// shq quotes a path for a POSIX shell when it needs it.
func shq(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:=@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// MSK's IAM login classes (aws-msk-iam-auth).
const (
	mskIAMLoginModule        = "software.amazon.msk.auth.iam.IAMLoginModule"
	mskIAMOAuthLoginCallback = "IAMOAuthBearerLoginCallbackHandler"
	mskIAMClientCallback     = "IAMClientCallbackHandler"
)

// sasl converts sasl.mechanism and sasl.jaas.config. The password stays
// out of the output: the YAML names an environment variable, and an
// action says how to set it.
func (cv *mm2Converter) sasl(alias string, s *mm2Security, comments yaml.CommentMap) error {
	mech := "GSSAPI" // Kafka's default
	mp, ok := cv.clusterGet(alias, "sasl.mechanism")
	if ok {
		mech = strings.ToUpper(strings.TrimSpace(mp.Value))
	}
	jp, hasJAAS := cv.clusterGet(alias, "sasl.jaas.config")
	var jaas *jaasConfig
	if hasJAAS {
		var err error
		if jaas, err = parseJAAS(jp.Value); err != nil {
			// The value holds a password: name the key, never the value.
			return cv.errorf(jp.Key, "cannot read it (%v); write it as LoginModuleClass required username=\"...\" password=\"...\";", err)
		}
	}
	loginCallback, _ := cv.clusterGet(alias, "sasl.login.callback.handler.class")
	if mech == "OAUTHBEARER" && strings.Contains(loginCallback.Value, mskIAMOAuthLoginCallback) {
		mech = "AWS_MSK_IAM" // MSK IAM through the OAUTHBEARER mechanism
	} else if loginCallback.Key != "" && mech != "OAUTHBEARER" {
		cv.unmap(loginCallback.Key, "custom SASL login callback: godwit's SASL needs only mechanism, username and password (or aws_msk_iam)")
	}
	if cb, ok := cv.clusterGet(alias, "sasl.client.callback.handler.class"); ok && !(mech == "AWS_MSK_IAM" && (strings.Contains(cb.Value, mskIAMClientCallback) || strings.Contains(cb.Value, mskIAMOAuthLoginCallback))) {
		cv.unmap(cb.Key, "custom SASL client callback: godwit's SASL needs only mechanism, username and password (or aws_msk_iam)")
	}
	switch mech {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		s.sasl = yaml.MapSlice{{Key: "mechanism", Value: strings.ToLower(mech)}}
		user := ""
		if jaas != nil {
			user = jaas.options["username"]
			cv.unknownJAASOptions(alias, jp.Key, jaas, "username", "password")
		}
		switch {
		case !hasJAAS:
			cv.note("cluster %s: %s without sasl.jaas.config (MM2 read its credentials from a JAAS file): set clusters.%s.sasl.username", alias, mech, alias)
			user = "SET-ME"
		case strings.Contains(user, "${"):
			cv.note("cluster %s: the SASL user name in %s comes from a config provider (${...}); put the user name itself in clusters.%s.sasl.username", alias, jp.Key, alias)
			user = "SET-ME"
		case user == "":
			return cv.errorf(jp.Key, "%s needs username=\"...\" in the JAAS config", mech)
		}
		s.sasl = append(s.sasl, yaml.MapItem{Key: "username", Value: user})
		s.passwordEnv = cv.envName(alias)
		from := jp.Key
		if !hasJAAS {
			from = "your JAAS file"
		}
		cv.actions = append(cv.actions, MM2Action{Cluster: alias, Kind: "env", Env: s.passwordEnv,
			What:     fmt.Sprintf("cluster %s: the password of SASL user %q (%s) is not copied into the config; godwit reads it from %s: type it at the prompt, or export it from your secret store", alias, user, from, s.passwordEnv),
			Commands: []string{fmt.Sprintf("read -rs %s && export %s", s.passwordEnv, s.passwordEnv)}})
		comments[yamlPath("clusters", alias, "sasl", "password_env")] = []*yaml.Comment{yaml.LineComment(fmt.Sprintf(" password of %q from %s, not copied: export %s before godwit starts", user, from, s.passwordEnv))}
	case "AWS_MSK_IAM":
		s.sasl = yaml.MapSlice{{Key: "mechanism", Value: MechanismAWSMSKIAM}}
		if jaas != nil {
			if v := jaas.options["awsRoleArn"]; v != "" {
				s.sasl = append(s.sasl, yaml.MapItem{Key: "role_arn", Value: v})
			}
			if v := jaas.options["awsStsRegion"]; v != "" {
				s.sasl = append(s.sasl, yaml.MapItem{Key: "region", Value: v})
			}
			if v := jaas.options["awsProfileName"]; v != "" {
				cv.actions = append(cv.actions, MM2Action{Cluster: alias, Kind: "env", Env: "AWS_PROFILE",
					What:     fmt.Sprintf("cluster %s: MM2 signed with AWS profile %q (awsProfileName in %s); godwit uses the AWS default credential chain, so run it with that profile", alias, v, jp.Key),
					Commands: []string{"export AWS_PROFILE=" + shq(v)}})
			}
			cv.unknownJAASOptions(alias, jp.Key, jaas, "awsRoleArn", "awsStsRegion", "awsProfileName", "awsDebugCreds")
		}
	case "OAUTHBEARER", "GSSAPI":
		what := map[string]string{"OAUTHBEARER": "SASL/OAUTHBEARER", "GSSAPI": "Kerberos (SASL/GSSAPI)"}[mech]
		reason := fmt.Sprintf("godwit does not support %s: give godwit's principal SCRAM or PLAIN credentials (sasl:) or a client certificate (tls.cert_file, tls.key_file), or aws_msk_iam on MSK", what)
		key := mp.Key
		if key == "" {
			key = jp.Key // no sasl.mechanism: Kafka's default, GSSAPI
		}
		cv.unmap(key, reason)
		cv.unmap(jp.Key, what+" login: not supported, see "+key)
		cv.unmap(loginCallback.Key, what+" login: not supported, see "+key)
		cv.note("cluster %s: %s is not supported by godwit, so the converted cluster has no authentication and its brokers will refuse godwit: configure sasl (scram-sha-512, scram-sha-256, plain) or mutual TLS for clusters.%s first", alias, what, alias)
	default:
		return cv.errorf(mp.Key, "%q is not a SASL mechanism godwit knows; godwit supports PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and AWS_MSK_IAM", mp.Value)
	}
	return nil
}

// unknownJAASOptions notes JAAS options the conversion does not use. Only
// their names are printed: values may be secrets.
func (cv *mm2Converter) unknownJAASOptions(alias, key string, j *jaasConfig, known ...string) {
	var extra []string
	for name := range j.options {
		if !contains(known, name) {
			extra = append(extra, name)
		}
	}
	if len(extra) == 0 {
		return
	}
	sort.Strings(extra)
	cv.note("cluster %s: %s options %s have no godwit equivalent and were not applied", alias, key, strings.Join(extra, ", "))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// envName is the variable a cluster's SASL password is read from,
// GODWIT_<ALIAS>_SASL_PASSWORD, unique within the conversion.
func (cv *mm2Converter) envName(alias string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(alias) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	base := "GODWIT_" + b.String() + "_SASL_PASSWORD"
	name := base
	for i := 2; cv.envNames[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	cv.envNames[name] = true
	return name
}

// jaasConfig is the first login module of a sasl.jaas.config value.
type jaasConfig struct {
	module  string
	flag    string
	options map[string]string
}

// parseJAAS reads "Module flag key=value ...;" as Kafka's JaasConfig does:
// values are bare words or double-quoted strings with backslash escapes.
// Errors never quote the text (it holds a password).
func parseJAAS(s string) (*jaasConfig, error) {
	toks, err := jaasTokens(s)
	if err != nil {
		return nil, err
	}
	if len(toks) < 2 || toks[0].quoted || toks[1].quoted {
		return nil, errors.New("expected a login module class and a control flag")
	}
	j := &jaasConfig{module: toks[0].text, flag: strings.ToLower(toks[1].text), options: map[string]string{}}
	switch j.flag {
	case "required", "requisite", "sufficient", "optional":
	default:
		return nil, errors.New("the control flag after the login module must be required, requisite, sufficient or optional")
	}
	for i := 2; i < len(toks); {
		t := toks[i]
		if t.text == ";" && !t.quoted {
			return j, nil // later modules: Kafka clients use only one
		}
		if i+2 >= len(toks) || toks[i+1].text != "=" || toks[i+1].quoted || t.quoted {
			return nil, fmt.Errorf("option %d is not name=value", (i-2)/3+1)
		}
		j.options[t.text] = toks[i+2].text
		i += 3
	}
	return nil, errors.New("missing ';' at the end")
}

type jaasToken struct {
	text   string
	quoted bool
}

func jaasTokens(s string) ([]jaasToken, error) {
	var out []jaasToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '=' || c == ';':
			out = append(out, jaasToken{text: string(c)})
			i++
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, errors.New("a quoted value is not closed")
			}
			out = append(out, jaasToken{text: b.String(), quoted: true})
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r\f=;\"", rune(s[j])) {
				j++
			}
			out = append(out, jaasToken{text: s[i:j]})
			i = j
		}
	}
	return out, nil
}
