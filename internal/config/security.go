package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

// SASL mechanisms (the sasl.mechanism values).
const (
	MechanismPlain       = "plain"
	MechanismScramSHA256 = "scram-sha-256"
	MechanismScramSHA512 = "scram-sha-512"
	MechanismAWSMSKIAM   = "aws_msk_iam"
)

// Mechanisms lists the supported sasl.mechanism values.
var Mechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismAWSMSKIAM}

// RedactedValue replaces secrets in printed configs.
const RedactedValue = "<redacted>"

// TLS is a cluster's TLS settings. A tls block turns TLS on unless it says
// enabled: false; without ca_file the system's roots verify the brokers.
type TLS struct {
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the brokers' certificates.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// CertFile and KeyFile are godwit's client certificate and key (PEM)
	// for mutual TLS.
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// ServerName is the name the brokers' certificates must carry; by
	// default the host each broker is dialed at.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// InsecureSkipVerify turns certificate verification off (testing only;
	// godwit warns loudly at start).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// IsEnabled reports whether connections use TLS.
func (t *TLS) IsEnabled() bool { return t != nil && t.Enabled != nil && *t.Enabled }

// SASL is a cluster's authentication. plain and scram-* use username and
// one of password, password_env or password_file; aws_msk_iam uses the AWS
// default credential chain, optionally assuming role_arn.
type SASL struct {
	Mechanism string `yaml:"mechanism" json:"mechanism"`
	Username  string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password is the secret itself; prefer PasswordEnv or PasswordFile so
	// the config file holds no secret. Printed configs show it redacted.
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	// PasswordFile names a file holding the password (trailing newline
	// trimmed), read at every connection so a rotated file is picked up.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// Region is the AWS region for credentials and role assumption
	// (aws_msk_iam); the signing region comes from the MSK broker names.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// RoleARN, if set, is assumed (STS AssumeRole) with the default chain's
	// credentials, and refreshed before it expires (aws_msk_iam).
	RoleARN string `yaml:"role_arn,omitempty" json:"role_arn,omitempty"`
}

// UsesIAM reports whether s authenticates with AWS MSK IAM.
func (s *SASL) UsesIAM() bool { return s != nil && s.Mechanism == MechanismAWSMSKIAM }

// ResolvePassword returns the password from password, password_env or
// password_file. Errors name the variable or file, never the secret.
func (s *SASL) ResolvePassword() (string, error) {
	switch {
	case s == nil:
		return "", errors.New("no sasl settings")
	case s.Password != "":
		return s.Password, nil
	case s.PasswordEnv != "":
		v, ok := os.LookupEnv(s.PasswordEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("sasl.password_env: environment variable %s is not set or empty", s.PasswordEnv)
		}
		return v, nil
	case s.PasswordFile != "":
		b, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("sasl.password_file: %v", pathErr(err))
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("sasl.password_file: %s is empty", s.PasswordFile)
		}
		return v, nil
	}
	return "", errors.New("sasl: no password, password_env or password_file")
}

// pathErr drops the *PathError's operation so messages read "FILE: reason".
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %v", pe.Path, pe.Err)
	}
	return err.Error()
}

// Warnings are the insecure or ineffective settings found in cluster alias
// (an insecure TLS setting, a password file others can read, ACL sync
// with MSK IAM), for godwit to log when it connects and for config check.
func (c *Config) Warnings(alias string) []string {
	if cl := c.Clusters[alias]; cl != nil {
		return append([]string(nil), cl.warnings...)
	}
	return nil
}

// AllWarnings returns every cluster's warnings, by alias order.
func (c *Config) AllWarnings() []string {
	var out []string
	for _, alias := range slices.Sorted(maps.Keys(c.Clusters)) {
		out = append(out, c.Warnings(alias)...)
	}
	return out
}

func (cl *Cluster) applySecurityDefaults() {
	if cl.SASL != nil {
		cl.SASL.Mechanism = strings.ToLower(strings.TrimSpace(cl.SASL.Mechanism))
		if cl.SASL.Mechanism == "aws-msk-iam" {
			cl.SASL.Mechanism = MechanismAWSMSKIAM
		}
		// MSK's IAM listener only speaks TLS.
		if cl.SASL.UsesIAM() && cl.TLS == nil {
			cl.TLS = &TLS{}
		}
	}
	if cl.TLS != nil && cl.TLS.Enabled == nil {
		t := true
		cl.TLS.Enabled = &t
	}
}

// iamFlowDefaults turns ACL sync off by default for flows touching an MSK
// IAM cluster: MSK IAM does not serve the Kafka ACL APIs.
func (c *Config) iamFlowDefaults() {
	for name, f := range c.Flows {
		if f == nil || f.SyncACLs != nil {
			continue
		}
		src, dst, err := ParseFlowName(name)
		if err != nil {
			continue
		}
		if c.clusterUsesIAM(src) || c.clusterUsesIAM(dst) {
			fl := false
			f.SyncACLs = &fl
		}
	}
}

func (c *Config) clusterUsesIAM(alias string) bool {
	cl := c.Clusters[alias]
	return cl != nil && cl.SASL.UsesIAM()
}

var roleARN = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)

// validateSecurity checks clusters.<alias>.tls and .sasl and collects the
// cluster's warnings.
func (cl *Cluster) validateSecurity(loc *locator, p string) error {
	cl.warnings = nil
	if t := cl.TLS; t != nil {
		tp := p + ".tls"
		if !t.IsEnabled() {
			if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify {
				return loc.errorf(tp+".enabled", "tls settings are given but tls.enabled is false; remove enabled: false to use TLS, or remove the other tls settings")
			}
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			return loc.errorf(tp, "cert_file and key_file go together (mutual TLS): set both or neither")
		}
		for _, f := range []struct{ key, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
			if f.path == "" {
				continue
			}
			if err := readable(f.path); err != nil {
				return loc.errorf(tp+"."+f.key, "%s; give the path of a readable PEM file", err)
			}
		}
		if t.KeyFile != "" {
			cl.warnIfShared(p, "tls.key_file", t.KeyFile)
		}
		if t.InsecureSkipVerify {
			cl.warnings = append(cl.warnings, fmt.Sprintf("%s.tls.insecure_skip_verify is true: the brokers' certificates are NOT verified, so anyone on the network path can impersonate the cluster and read its data and credentials; use it only for testing and set tls.ca_file instead", p))
		}
	}
	s := cl.SASL
	if s == nil {
		return nil
	}
	sp := p + ".sasl"
	switch s.Mechanism {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if s.Username == "" {
			return loc.errorf(sp+".username", "%s needs a username", s.Mechanism)
		}
		n := 0
		for _, v := range []string{s.Password, s.PasswordEnv, s.PasswordFile} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return loc.errorf(sp, "%s needs exactly one of password, password_env or password_file (found %d); password_env or password_file keep the secret out of the config file", s.Mechanism, n)
		}
		if s.Region != "" || s.RoleARN != "" {
			return loc.errorf(sp, "region and role_arn apply to aws_msk_iam only; remove them for %s", s.Mechanism)
		}
		switch {
		case s.PasswordEnv != "":
			if v, ok := os.LookupEnv(s.PasswordEnv); !ok || v == "" {
				return loc.errorf(sp+".password_env", "environment variable %s is not set or empty; export it before starting godwit", s.PasswordEnv)
			}
		case s.PasswordFile != "":
			if err := readable(s.PasswordFile); err != nil {
				return loc.errorf(sp+".password_file", "%s; give the path of a readable file holding the password", err)
			}
			cl.warnIfShared(p, "sasl.password_file", s.PasswordFile)
		}
		if s.Mechanism == MechanismPlain && !cl.TLS.IsEnabled() {
			cl.warnings = append(cl.warnings, fmt.Sprintf("%s.sasl: mechanism plain without tls sends the password in clear text; enable tls", p))
		}
	case MechanismAWSMSKIAM:
		if s.Username != "" || s.Password != "" || s.PasswordEnv != "" || s.PasswordFile != "" {
			return loc.errorf(sp, "aws_msk_iam takes no username or password: credentials come from the AWS default chain (environment, shared config/profile, web identity, instance role), optionally with role_arn")
		}
		if s.RoleARN != "" && !roleARN.MatchString(s.RoleARN) {
			return loc.errorf(sp+".role_arn", "%q is not an IAM role ARN such as arn:aws:iam::123456789012:role/godwit", s.RoleARN)
		}
		if !cl.TLS.IsEnabled() {
			return loc.errorf(sp, "aws_msk_iam needs TLS (MSK's IAM listener, port 9098, only speaks TLS); remove tls.enabled: false")
		}
	case "":
		return loc.errorf(sp+".mechanism", "sasl needs a mechanism: %s", strings.Join(Mechanisms, ", "))
	default:
		return loc.errorf(sp+".mechanism", "%q is not a supported mechanism; use one of %s", s.Mechanism, strings.Join(Mechanisms, ", "))
	}
	return nil
}

// warnIfShared warns when a secret file is readable by group or others.
func (cl *Cluster) warnIfShared(p, key, path string) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		cl.warnings = append(cl.warnings, fmt.Sprintf("%s.%s %s is readable by others (mode %04o); restrict it with chmod 600 %s", p, key, path, perm, path))
	}
}

// validateFlowSecurity warns about flow features an MSK IAM cluster
// cannot serve.
func (c *Config) validateFlowSecurity(f *Flow) {
	if f.SyncACLs == nil || !*f.SyncACLs {
		return
	}
	for _, alias := range []string{f.Source, f.Target} {
		if c.clusterUsesIAM(alias) {
			cl := c.Clusters[alias]
			cl.warnings = append(cl.warnings, fmt.Sprintf("flows.%s.sync_acls is true but cluster %s uses aws_msk_iam: MSK IAM does not serve the Kafka ACL APIs, so ACL sync will fail; set sync_acls: false and grant access with IAM policies (docs/security.md)", f.Name, alias))
		}
	}
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.New(pathErr(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return errors.New(pathErr(err))
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}
