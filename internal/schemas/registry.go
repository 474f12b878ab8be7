// Package schemas keeps a flow's Schema Registry subjects in step with the
// data: every selected subject version on the source registry is
// registered on the target registry, with the same schema ID and version
// (preserve-ids) or by content with an ID map that the data plane uses to
// rewrite the ID in each record (translate-ids). Registries are spoken to
// through the Confluent Schema Registry REST API (franz-go's pkg/sr);
// Apicurio Registry's admin import API writes IDs where its Confluent API
// cannot.
package schemas

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/godwit/godwit/internal/config"
)

// Schema types as the Confluent API names them ("" means AVRO).
const (
	TypeAvro     = "AVRO"
	TypeProtobuf = "PROTOBUF"
	TypeJSON     = "JSON"
)

// Reference is a schema's reference to another subject version.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Version is one subject version as the registry serves it.
type Version struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	Type       string      `json:"schemaType,omitempty"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
	// Deleted is a soft-deleted version: still resolvable by ID, hidden
	// from the subject's version list.
	Deleted bool `json:"deleted,omitempty"`
}

// SchemaType is the version's type, AVRO when the registry left it out.
func (v Version) SchemaType() string {
	if v.Type == "" {
		return TypeAvro
	}
	return strings.ToUpper(v.Type)
}

// sameContent reports whether two versions hold the same schema.
func sameContent(a, b Version) bool {
	if a.Schema != b.Schema || a.SchemaType() != b.SchemaType() || len(a.References) != len(b.References) {
		return false
	}
	for i := range a.References {
		if a.References[i] != b.References[i] {
			return false
		}
	}
	return true
}

// Registry is one cluster's Schema Registry.
type Registry struct {
	Alias string
	URL   string
	cfg   *config.SchemaRegistry
	cl    *sr.Client
	http  *http.Client
	user  string
	pass  string
}

// New connects nothing yet: it builds the client for cluster alias's
// registry (TLS, basic auth, timeout).
func New(alias string, c *config.SchemaRegistry) (*Registry, error) {
	if c == nil {
		return nil, fmt.Errorf("cluster %s has no schema_registry", alias)
	}
	pass, err := c.ResolvePassword()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", alias, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" || c.CertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: schema_registry.ca_file: %w", alias, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("cluster %s: schema_registry.ca_file %s holds no PEM certificate", alias, c.CAFile)
			}
			tc.RootCAs = pool
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: schema_registry cert_file/key_file: %w", alias, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	hc := &http.Client{Transport: tr, Timeout: c.Timeout.D()}
	if hc.Timeout == 0 {
		hc.Timeout = config.DefaultSchemaRegistryTimeout
	}
	opts := []sr.ClientOpt{sr.URLs(strings.TrimRight(c.URL, "/")), sr.HTTPClient(hc), sr.UserAgent("godwit")}
	if c.Username != "" {
		opts = append(opts, sr.BasicAuth(c.Username, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: schema registry %s: %w", alias, c.URL, err)
	}
	return &Registry{Alias: alias, URL: strings.TrimRight(c.URL, "/"), cfg: c, cl: cl, http: hc, user: c.Username, pass: pass}, nil
}

// FromConfig builds cluster alias's registry from the config.
func FromConfig(cfg *config.Config, alias string) (*Registry, error) {
	c, err := cfg.Registry(alias)
	if err != nil {
		return nil, err
	}
	return New(alias, c)
}

// Client is the underlying Confluent API client (serdes in tests and the
// drill use it to resolve IDs).
func (r *Registry) Client() *sr.Client { return r.cl }

// explain wraps err with what was asked of which registry.
func (r *Registry) explain(what string, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("schema registry of %s (%s): %s: HTTP %d: %s", r.Alias, r.URL, what, re.StatusCode, re.Error())
	}
	return fmt.Errorf("schema registry of %s (%s): %s: %w (is the registry up and the url right?)", r.Alias, r.URL, what, err)
}

// notFound reports a 404 from the registry.
func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func deleted(ctx context.Context) context.Context {
	return sr.WithParams(ctx, sr.ShowDeleted)
}

// Subjects lists every subject, soft-deleted ones included.
func (r *Registry) Subjects(ctx context.Context) ([]string, error) {
	s, err := r.cl.Subjects(deleted(ctx))
	if err != nil {
		return nil, r.explain("list subjects", err)
	}
	sort.Strings(s)
	return s, nil
}

// Versions lists a subject's versions, and which of them are
// soft-deleted. A subject that does not exist has none.
func (r *Registry) Versions(ctx context.Context, subject string) (all []int, isDeleted map[int]bool, err error) {
	all, err = r.cl.SubjectVersions(deleted(ctx), subject)
	if notFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, r.explain("list versions of subject "+subject, err)
	}
	live, err := r.cl.SubjectVersions(ctx, subject)
	if err != nil && !notFound(err) {
		return nil, nil, r.explain("list versions of subject "+subject, err)
	}
	isLive := map[int]bool{}
	for _, v := range live {
		isLive[v] = true
	}
	isDeleted = map[int]bool{}
	for _, v := range all {
		if !isLive[v] {
			isDeleted[v] = true
		}
	}
	sort.Ints(all)
	return all, isDeleted, nil
}

// Version reads one subject version (soft-deleted ones too).
func (r *Registry) Version(ctx context.Context, subject string, version int) (Version, error) {
	ss, err := r.cl.SchemaByVersion(deleted(ctx), subject, version)
	if err != nil {
		return Version{}, r.explain(fmt.Sprintf("read subject %s version %d", subject, version), err)
	}
	return fromSR(ss), nil
}

func fromSR(ss sr.SubjectSchema) Version {
	v := Version{Subject: ss.Subject, Version: ss.Version, ID: ss.ID, Schema: ss.Schema.Schema, Type: ss.Type.String()}
	if ss.Type == sr.TypeAvro {
		v.Type = TypeAvro
	}
	for _, ref := range ss.References {
		v.References = append(v.References, Reference{Name: ref.Name, Subject: ref.Subject, Version: ref.Version})
	}
	return v
}

func (v Version) srSchema() sr.Schema {
	s := sr.Schema{Schema: v.Schema}
	switch v.SchemaType() {
	case TypeProtobuf:
		s.Type = sr.TypeProtobuf
	case TypeJSON:
		s.Type = sr.TypeJSON
	default:
		s.Type = sr.TypeAvro
	}
	for _, ref := range v.References {
		s.References = append(s.References, sr.SchemaReference{Name: ref.Name, Subject: ref.Subject, Version: ref.Version})
	}
	return s
}

// SchemaByID resolves a schema ID as a consumer does. found is false when
// the registry does not know the ID.
func (r *Registry) SchemaByID(ctx context.Context, id int) (v Version, found bool, err error) {
	s, err := r.cl.SchemaByID(ctx, id)
	if notFound(err) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, r.explain("resolve schema id "+strconv.Itoa(id), err)
	}
	v = fromSR(sr.SubjectSchema{ID: id, Schema: s})
	return v, true, nil
}

// Compatibility is a subject's effective compatibility level (its own, or
// the registry's default).
func (r *Registry) Compatibility(ctx context.Context, subject string) (string, error) {
	res := r.cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if err := res[0].Err; err != nil {
		if notFound(err) && subject != "" {
			return r.Compatibility(ctx, "")
		}
		return "", r.explain("read compatibility of "+orGlobal(subject), err)
	}
	return res[0].Level.String(), nil
}

func orGlobal(subject string) string {
	if subject == "" {
		return "the registry (global)"
	}
	return "subject " + subject
}

// SetCompatibility sets a subject's compatibility level.
func (r *Registry) SetCompatibility(ctx context.Context, subject, level string) error {
	var l sr.CompatibilityLevel
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("subject %s: compatibility %q: %w", subject, level, err)
	}
	res := r.cl.SetCompatibility(ctx, sr.SetCompatibility{Level: l}, subject)
	if err := res[0].Err; err != nil {
		return r.explain(fmt.Sprintf("set compatibility of subject %s to %s", subject, level), err)
	}
	return nil
}

// Lookup finds the version of subject holding v's content (found false
// when the subject does not have it).
func (r *Registry) Lookup(ctx context.Context, subject string, v Version) (Version, bool, error) {
	ss, err := r.cl.LookupSchema(deleted(ctx), subject, v.srSchema())
	if notFound(err) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, r.explain("look up a schema in subject "+subject, err)
	}
	return fromSR(ss), true, nil
}

// Register registers v's content under subject and returns the ID the
// registry gave it (an existing one if the content is known). A refusal
// (incompatible, invalid) names the subject and the source version.
func (r *Registry) Register(ctx context.Context, subject string, v Version) (int, error) {
	id, err := r.cl.RegisterSchema(ctx, subject, v.srSchema(), -1, -1)
	if err != nil {
		return 0, r.refused(subject, v, err)
	}
	return id, nil
}

// RegisterWithID registers v under its own ID and version (IMPORT mode).
func (r *Registry) RegisterWithID(ctx context.Context, v Version) (int, error) {
	id, err := r.cl.RegisterSchema(ctx, v.Subject, v.srSchema(), v.ID, v.Version)
	if err != nil {
		return 0, r.refused(v.Subject, v, err)
	}
	return id, nil
}

func (r *Registry) refused(subject string, v Version, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && (re.StatusCode == http.StatusConflict || re.StatusCode == http.StatusUnprocessableEntity) {
		return fmt.Errorf("schema registry of %s refused subject %s version %d (source id %d): HTTP %d: %s; the target's subject has diverged or its compatibility differs: compare both with `godwit audit`", r.Alias, subject, v.Version, v.ID, re.StatusCode, re.Error())
	}
	return r.explain(fmt.Sprintf("register subject %s version %d (source id %d)", subject, v.Version, v.ID), err)
}

// SoftDelete soft-deletes one subject version.
func (r *Registry) SoftDelete(ctx context.Context, subject string, version int) error {
	if err := r.cl.DeleteSchema(ctx, subject, version, sr.SoftDelete); err != nil {
		return r.explain(fmt.Sprintf("soft-delete subject %s version %d", subject, version), err)
	}
	return nil
}

// Mode is a subject's (or, for "", the registry's) mode.
func (r *Registry) Mode(ctx context.Context, subject string) (string, error) {
	res := r.cl.Mode(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if err := res[0].Err; err != nil {
		if notFound(err) && subject != "" {
			return r.Mode(ctx, "")
		}
		return "", r.explain("read mode of "+orGlobal(subject), err)
	}
	return res[0].Mode.String(), nil
}

// SetMode sets a subject's mode (force: also on a non-empty subject).
func (r *Registry) SetMode(ctx context.Context, subject, mode string) error {
	var m sr.Mode
	if err := m.UnmarshalText([]byte(mode)); err != nil {
		return err
	}
	res := r.cl.SetMode(sr.WithParams(ctx, sr.Force), m, subject)
	if err := res[0].Err; err != nil {
		return r.explain(fmt.Sprintf("set mode of %s to %s", orGlobal(subject), mode), err)
	}
	return nil
}

// apicurioBase is the registry's root when its URL is Apicurio Registry's
// Confluent API (…/apis/ccompat/vN), else the URL itself.
func (r *Registry) apicurioBase() string {
	if i := strings.Index(r.URL, "/apis/ccompat/"); i >= 0 {
		return r.URL[:i]
	}
	return r.URL
}

// IsApicurio asks the registry whether it is Apicurio Registry (its
// native API's system info).
func (r *Registry) IsApicurio(ctx context.Context) (bool, error) {
	var info struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	err := r.native(ctx, http.MethodGet, "/apis/registry/v3/system/info", "", nil, &info)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status < 500 {
			return false, nil // some other registry
		}
		return false, err
	}
	return strings.Contains(strings.ToLower(info.Name), "apicurio"), nil
}

type httpError struct {
	method, url string
	status      int
	body        string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.url, e.status, e.body)
}

// native calls Apicurio Registry's own API (path under its root).
func (r *Registry) native(ctx context.Context, method, path, contentType string, body []byte, into any) error {
	u, err := url.JoinPath(r.apicurioBase(), path)
	if err != nil {
		return err
	}
	if i := strings.Index(path, "?"); i >= 0 { // JoinPath escapes '?'
		u, _ = url.JoinPath(r.apicurioBase(), path[:i])
		u += path[i:]
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "godwit")
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("schema registry of %s: %s %s: %w", r.Alias, method, u, err)
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("schema registry of %s: %s %s: read answer: %w", r.Alias, method, u, err)
	}
	if resp.StatusCode >= 300 {
		return &httpError{method: method, url: u, status: resp.StatusCode, body: strings.TrimSpace(string(buf))}
	}
	if into != nil && len(buf) > 0 {
		if err := json.Unmarshal(buf, into); err != nil {
			return fmt.Errorf("schema registry of %s: %s %s: decode answer: %w", r.Alias, method, u, err)
		}
	}
	return nil
}
