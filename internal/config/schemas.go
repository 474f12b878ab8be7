package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// Schema ID modes (flows.<name>.schemas.mode).
const (
	// SchemaPreserveIDs registers every version on the target with the
	// source's schema ID and version, so records are copied unchanged.
	SchemaPreserveIDs = "preserve-ids"
	// SchemaTranslateIDs registers by content on a target that has IDs of
	// its own and rewrites the schema ID in each replicated record.
	SchemaTranslateIDs = "translate-ids"
)

// How a preserve-ids flow writes a schema with a given ID
// (clusters.<alias>.schema_registry.import).
const (
	// ImportAuto asks the registry what it is: Apicurio's admin import
	// API when it is Apicurio Registry, IMPORT mode otherwise.
	ImportAuto = "auto"
	// ImportMode is the Confluent API's IMPORT mode (Confluent Schema
	// Registry, Redpanda, Karapace): register with id and version.
	ImportMode = "import-mode"
	// ImportApicurio is Apicurio Registry's admin import
	// (/apis/registry/v3/admin/import), which keeps content IDs; its
	// Confluent API ignores the id and version of a registration.
	ImportApicurio = "apicurio"
)

// SchemaRegistry is a cluster's Schema Registry, spoken to through the
// Confluent Schema Registry REST API. Password handling is the SASL one:
// one of password, password_env or password_file, never printed.
type SchemaRegistry struct {
	// URL is the API's base, e.g. https://sr.example.com or, for Apicurio
	// Registry, http://host:8080/apis/ccompat/v7.
	URL      string `yaml:"url" json:"url"`
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password is the secret itself; prefer PasswordEnv or PasswordFile.
	Password     string `yaml:"password,omitempty" json:"password,omitempty"`
	PasswordEnv  string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// CAFile is a PEM bundle of the CAs that sign the registry's
	// certificate (https URLs); without it the system roots verify it.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// CertFile and KeyFile are a client certificate and key (mutual TLS).
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// Timeout bounds one request.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Import is how preserve-ids writes a schema with its ID on this
	// registry when it is a target: auto, import-mode or apicurio.
	Import string `yaml:"import" json:"import"`
}

// Schemas is a flow's Schema Registry sync.
type Schemas struct {
	// Enabled defaults to true when both of the flow's clusters have a
	// schema_registry, false otherwise.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Subjects and SubjectsExclude select subjects (full-match RE2).
	Subjects        []string `yaml:"subjects" json:"subjects"`
	SubjectsExclude []string `yaml:"subjects_exclude" json:"subjects_exclude"`
	// Mode is preserve-ids (default) or translate-ids.
	Mode string `yaml:"mode" json:"mode"`

	subjects, subjectsExclude []*regexp.Regexp
}

// SchemasEnabled reports whether the flow syncs schemas.
func (f *Flow) SchemasEnabled() bool {
	return f.Schemas != nil && f.Schemas.Enabled != nil && *f.Schemas.Enabled
}

// SubjectSelected reports whether a subject passes the flow's schema
// subject filters.
func (s *Schemas) SubjectSelected(subject string) bool {
	return s != nil && matchAny(s.subjects, subject) && !matchAny(s.subjectsExclude, subject)
}

// TranslatesIDs reports whether records' schema IDs are rewritten.
func (f *Flow) TranslatesIDs() bool {
	return f.SchemasEnabled() && f.Schemas.Mode == SchemaTranslateIDs
}

// ResolvePassword returns the registry password ("" when none is
// configured). Errors name the variable or file, never the secret.
func (r *SchemaRegistry) ResolvePassword() (string, error) {
	switch {
	case r == nil:
		return "", nil
	case r.Password != "":
		return r.Password, nil
	case r.PasswordEnv != "":
		v, ok := os.LookupEnv(r.PasswordEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("schema_registry.password_env: environment variable %s is not set or empty", r.PasswordEnv)
		}
		return v, nil
	case r.PasswordFile != "":
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("schema_registry.password_file: %v", pathErr(err))
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("schema_registry.password_file: %s is empty", r.PasswordFile)
		}
		return v, nil
	}
	return "", nil
}

func (r *SchemaRegistry) applyDefaults() {
	if r.Timeout == 0 {
		r.Timeout = Duration(DefaultSchemaRegistryTimeout)
	}
	if r.Import == "" {
		r.Import = ImportAuto
	}
}

// schemaFlowDefaults fills flow name's schemas block (its enabled default
// depends on the flow's clusters).
func (c *Config) schemaFlowDefaults(name string, f *Flow) {
	if f.Schemas == nil {
		f.Schemas = &Schemas{}
	}
	s := f.Schemas
	if s.Enabled == nil {
		srcAlias, dstAlias, _ := ParseFlowName(name)
		src, dst := c.Clusters[srcAlias], c.Clusters[dstAlias]
		on := src != nil && dst != nil && src.SchemaRegistry != nil && dst.SchemaRegistry != nil
		s.Enabled = &on
	}
	if s.Subjects == nil {
		s.Subjects = []string{".*"}
	}
	if s.SubjectsExclude == nil {
		s.SubjectsExclude = []string{}
	}
	if s.Mode == "" {
		s.Mode = DefaultSchemaMode
	}
}

// validateRegistry checks clusters.<alias>.schema_registry.
func (cl *Cluster) validateRegistry(loc *locator, p string) error {
	r := cl.SchemaRegistry
	if r == nil {
		return nil
	}
	p += ".schema_registry"
	u, err := url.Parse(r.URL)
	if r.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return loc.errorf(p+".url", "%q is not an http(s) URL; give the registry's API base, e.g. https://sr.example.com or http://host:8080/apis/ccompat/v7 for Apicurio Registry", r.URL)
	}
	if u.User != nil {
		return loc.errorf(p+".url", "credentials in the URL would be printed; use username and password_env/password_file")
	}
	n := 0
	for _, v := range []string{r.Password, r.PasswordEnv, r.PasswordFile} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return loc.errorf(p, "give at most one of password, password_env or password_file (found %d)", n)
	}
	if n == 1 && r.Username == "" {
		return loc.errorf(p+".username", "a password needs a username (HTTP basic auth)")
	}
	switch {
	case r.PasswordEnv != "":
		if v, ok := os.LookupEnv(r.PasswordEnv); !ok || v == "" {
			return loc.errorf(p+".password_env", "environment variable %s is not set or empty; export it before starting godwit", r.PasswordEnv)
		}
	case r.PasswordFile != "":
		if err := readable(r.PasswordFile); err != nil {
			return loc.errorf(p+".password_file", "%s; give the path of a readable file holding the password", err)
		}
		cl.warnIfShared(strings.TrimSuffix(p, ".schema_registry"), "schema_registry.password_file", r.PasswordFile)
	}
	if (r.CertFile == "") != (r.KeyFile == "") {
		return loc.errorf(p, "cert_file and key_file go together (mutual TLS): set both or neither")
	}
	for _, f := range []struct{ key, path string }{{"ca_file", r.CAFile}, {"cert_file", r.CertFile}, {"key_file", r.KeyFile}} {
		if f.path == "" {
			continue
		}
		if u.Scheme != "https" {
			return loc.errorf(p+"."+f.key, "%s applies to https URLs only; the url is %s", f.key, u.Scheme)
		}
		if err := readable(f.path); err != nil {
			return loc.errorf(p+"."+f.key, "%s; give the path of a readable PEM file", err)
		}
	}
	if r.Password != "" && u.Scheme == "http" {
		cl.warnings = append(cl.warnings, fmt.Sprintf("%s: a password over http is sent in clear text; use an https url", p))
	}
	switch r.Import {
	case ImportAuto, ImportMode, ImportApicurio:
	default:
		return loc.errorf(p+".import", "%q is not an import method; use auto, import-mode or apicurio", r.Import)
	}
	return nil
}

// validateSchemas checks flows.<name>.schemas.
func (c *Config) validateSchemas(loc *locator, f *Flow, p string) error {
	s := f.Schemas
	p += ".schemas"
	var err error
	if s.subjects, err = compileAll(loc, p+".subjects", s.Subjects); err != nil {
		return err
	}
	if s.subjectsExclude, err = compileAll(loc, p+".subjects_exclude", s.SubjectsExclude); err != nil {
		return err
	}
	switch s.Mode {
	case SchemaPreserveIDs, SchemaTranslateIDs:
	default:
		return loc.errorf(p+".mode", "%q is not a schema mode; use preserve-ids (same IDs on the target) or translate-ids (the target has its own IDs; records are rewritten)", s.Mode)
	}
	if !f.SchemasEnabled() {
		return nil
	}
	for _, alias := range []string{f.Source, f.Target} {
		if c.Clusters[alias].SchemaRegistry == nil {
			return loc.errorf(p+".enabled", "schemas are enabled but cluster %s has no schema_registry; add clusters.%s.schema_registry.url or set enabled: false", alias, alias)
		}
	}
	return nil
}

// redactedRegistry copies r with its password redacted.
func redactedRegistry(r *SchemaRegistry) *SchemaRegistry {
	if r == nil {
		return nil
	}
	cp := *r
	if cp.Password != "" {
		cp.Password = RedactedValue
	}
	return &cp
}

// String prints the registry settings without the password.
func (r SchemaRegistry) String() string {
	out := "{url=" + r.URL
	if r.Username != "" {
		out += " username=" + r.Username
	}
	switch {
	case r.Password != "":
		out += " password=" + RedactedValue
	case r.PasswordEnv != "":
		out += " password_env=" + r.PasswordEnv
	case r.PasswordFile != "":
		out += " password_file=" + r.PasswordFile
	}
	return out + "}"
}

// GoString keeps %#v from printing the password.
func (r SchemaRegistry) GoString() string { return "config.SchemaRegistry" + r.String() }

var errNoRegistry = errors.New("no schema_registry")

// Registry returns cluster alias's schema registry settings.
func (c *Config) Registry(alias string) (*SchemaRegistry, error) {
	cl := c.Clusters[alias]
	if cl == nil {
		return nil, fmt.Errorf("cluster %q is not defined", alias)
	}
	if cl.SchemaRegistry == nil {
		return nil, fmt.Errorf("cluster %s: %w; add clusters.%s.schema_registry.url", alias, errNoRegistry, alias)
	}
	return cl.SchemaRegistry, nil
}

// registryNoMethods has SchemaRegistry's fields without its marshalers.
type registryNoMethods SchemaRegistry

// MarshalJSON writes the settings with the password redacted, so even an
// unredacted config cannot be encoded with its secret.
func (r SchemaRegistry) MarshalJSON() ([]byte, error) {
	return json.Marshal(registryNoMethods(*redactedRegistry(&r)))
}

// MarshalYAML writes the settings with the password redacted.
func (r SchemaRegistry) MarshalYAML() (any, error) {
	return registryNoMethods(*redactedRegistry(&r)), nil
}
