package config

import (
	"encoding/json"
	"log/slog"
)

// Redacted returns a copy of the config that is safe to print or log:
// secret values are replaced by "<redacted>". Commands that print a config
// (godwit config check) print c.Redacted(), so a secret field added later
// only needs redacting here. The copy shares nothing mutable with c.
func (c *Config) Redacted() *Config {
	cp := *c
	if c.Clusters != nil {
		cp.Clusters = make(map[string]*Cluster, len(c.Clusters))
		for k, v := range c.Clusters {
			if v != nil {
				cl := *v
				if v.TLS != nil {
					t := *v.TLS
					cl.TLS = &t
				}
				if v.SASL != nil {
					s := *v.SASL
					if s.Password != "" {
						s.Password = RedactedValue
					}
					cl.SASL = &s
				}
				cl.SchemaRegistry = redactedRegistry(v.SchemaRegistry)
				v = &cl
			}
			cp.Clusters[k] = v
		}
	}
	return &cp
}

// String prints the SASL settings without the password, so a %v of a
// cluster in a log or error cannot leak it.
func (s SASL) String() string {
	pw := ""
	switch {
	case s.Password != "":
		pw = " password=" + RedactedValue
	case s.PasswordEnv != "":
		pw = " password_env=" + s.PasswordEnv
	case s.PasswordFile != "":
		pw = " password_file=" + s.PasswordFile
	}
	out := "{mechanism=" + s.Mechanism
	if s.Username != "" {
		out += " username=" + s.Username
	}
	out += pw
	if s.Region != "" {
		out += " region=" + s.Region
	}
	if s.RoleARN != "" {
		out += " role_arn=" + s.RoleARN
	}
	return out + "}"
}

// GoString keeps %#v from printing the password too.
func (s SASL) GoString() string { return "config.SASL" + s.String() }

// LogValue keeps slog (text or JSON) from printing the password.
func (s SASL) LogValue() slog.Value { return slog.StringValue(s.String()) }

// saslNoMethods has SASL's fields without its marshalers.
type saslNoMethods SASL

func (s SASL) redacted() saslNoMethods {
	if s.Password != "" {
		s.Password = RedactedValue
	}
	return saslNoMethods(s)
}

// MarshalJSON writes the settings with the password redacted, so even an
// unredacted config cannot be encoded with its secret.
func (s SASL) MarshalJSON() ([]byte, error) { return json.Marshal(s.redacted()) }

// MarshalYAML writes the settings with the password redacted.
func (s SASL) MarshalYAML() (any, error) { return s.redacted(), nil }
