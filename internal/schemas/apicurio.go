package schemas

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Apicurio Registry's Confluent API gives a new registration an ID of its
// own whatever the request says. Its admin import
// (POST /apis/registry/v3/admin/import, a zip in its export format)
// keeps content IDs, which are what its Confluent API serves as schema IDs,
// and version numbers (versionOrder), so preserve-ids goes through it. Two
// of the importer's behaviours shape what is sent:
//   - a failed entity is logged and skipped, the request still succeeds:
//     every imported version is read back through the Confluent API;
//   - a version can only point at content imported in the same request,
//     so a source version whose content the target already has (the same
//     schema under another subject) is registered through the Confluent
//     API instead, where the content's existing ID is reused.
//
// The "latest" branch, which the Confluent API reads for version lists and
// "latest", is imported as an ordinary branch for a new subject (a
// system branch cannot be changed later) and extended through the branch
// API for later versions.

type apicurioImport struct {
	zw       *zip.Writer
	buf      bytes.Buffer
	contents map[int]bool
	versions []Version
	branches map[string][]string // new subjects: their versions, in order
	order    []string
}

func newApicurioImport() *apicurioImport {
	imp := &apicurioImport{contents: map[int]bool{}, branches: map[string][]string{}}
	imp.zw = zip.NewWriter(&imp.buf)
	return imp
}

func (imp *apicurioImport) add(v Version, newSubject bool) {
	imp.versions = append(imp.versions, v)
	if newSubject {
		if _, ok := imp.branches[v.Subject]; !ok {
			imp.order = append(imp.order, v.Subject)
		}
		imp.branches[v.Subject] = append(imp.branches[v.Subject], strconv.Itoa(v.Version))
	}
}

func contentType(t string) string {
	if t == TypeProtobuf {
		return "application/x-protobuf"
	}
	return "application/json"
}

type apicurioRef struct {
	GroupID    *string `json:"groupId"`
	ArtifactID string  `json:"artifactId"`
	Version    string  `json:"version"`
	Name       string  `json:"name"`
}

// zip writes the import archive: manifest, contents, subjects
// (artifacts), versions, branches, in the order the importer needs.
func (imp *apicurioImport) zip() ([]byte, error) {
	put := func(name string, v any) error {
		w, err := imp.zw.Create(name)
		if err != nil {
			return err
		}
		if b, ok := v.([]byte); ok {
			_, err = w.Write(b)
			return err
		}
		return json.NewEncoder(w).Encode(v)
	}
	if err := put("manifest-godwit.Manifest.json", map[string]any{
		"systemName": "godwit", "systemDescription": "godwit schema sync", "systemVersion": "",
		"exportVersion": "3.0", "exportedOn": 0, "exportedBy": "godwit", "dbVersion": "",
	}); err != nil {
		return nil, err
	}
	for _, v := range imp.versions {
		if imp.contents[v.ID] {
			continue
		}
		imp.contents[v.ID] = true
		sum := sha256.Sum256([]byte(v.Schema))
		h := hex.EncodeToString(sum[:])
		var refs *string
		if len(v.References) > 0 {
			var rs []apicurioRef
			for _, r := range v.References {
				rs = append(rs, apicurioRef{ArtifactID: r.Subject, Version: strconv.Itoa(r.Version), Name: r.Name})
			}
			b, _ := json.Marshal(rs)
			s := string(b)
			refs = &s
		}
		if err := put("content/"+h+".Content.json", map[string]any{
			"contentId": v.ID, "canonicalHash": nil, "contentHash": h, "artifactType": v.SchemaType(),
			"contentType": contentType(v.SchemaType()), "serializedReferences": refs,
		}); err != nil {
			return nil, err
		}
		if err := put("content/"+h+".Content.data", []byte(v.Schema)); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, v := range imp.versions {
		if _, isNew := imp.branches[v.Subject]; !isNew || seen[v.Subject] {
			continue
		}
		seen[v.Subject] = true
		if err := put(artifactPath(v.Subject)+"MetaData.Artifact.json", map[string]any{
			"groupId": nil, "artifactId": v.Subject, "artifactType": v.SchemaType(), "name": nil, "description": nil,
			"labels": nil, "owner": "", "createdOn": 0, "modifiedBy": "", "modifiedOn": 0,
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range imp.versions {
		state := "ENABLED"
		if v.Deleted {
			state = "DISABLED"
		}
		if err := put(artifactPath(v.Subject)+"versions/"+strconv.Itoa(v.Version)+".ArtifactVersion.json", map[string]any{
			// globalId is Apicurio's own and not what the Confluent API
			// serves: the target allocates it (X-Registry-Preserve-GlobalId: false).
			"globalId": 0, "groupId": nil, "artifactId": v.Subject, "version": strconv.Itoa(v.Version),
			"versionOrder": v.Version, "state": state, "name": nil, "description": nil, "owner": "",
			"labels": nil, "createdOn": 0, "modifiedBy": "", "modifiedOn": 0, "contentId": v.ID,
		}); err != nil {
			return nil, err
		}
	}
	for _, subject := range imp.order {
		if err := put(artifactPath(subject)+"branches/latest.Branch.json", map[string]any{
			"groupId": nil, "artifactId": subject, "branchId": "latest", "description": nil,
			"systemDefined": false, "owner": "", "createdOn": 0, "modifiedBy": "", "modifiedOn": 0,
			"versions": imp.branches[subject],
		}); err != nil {
			return nil, err
		}
	}
	if err := imp.zw.Close(); err != nil {
		return nil, err
	}
	return imp.buf.Bytes(), nil
}

func artifactPath(subject string) string {
	return "groups/default/artifacts/" + subject + "/"
}

// apicurioImportZip posts an import archive.
func (r *Registry) apicurioImportZip(ctx context.Context, z []byte) error {
	u, err := url.JoinPath(r.apicurioBase(), "/apis/registry/v3/admin/import")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+"?requireEmptyRegistry=false", bytes.NewReader(z))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("X-Registry-Preserve-GlobalId", "false")
	req.Header.Set("X-Registry-Preserve-ContentId", "true")
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("schema registry of %s: import through %s: %w", r.Alias, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return fmt.Errorf("schema registry of %s: import through %s: HTTP %d: %s (godwit needs the sr-admin role on Apicurio Registry to import)", r.Alias, u, resp.StatusCode, body.String())
	}
	return nil
}

// appendLatest adds an imported version to an existing subject's latest
// branch. A system-defined branch (a subject first registered on the
// target itself) cannot be changed: that is reported, the version itself
// is in place.
func (r *Registry) appendLatest(ctx context.Context, subject string, version int) error {
	body, _ := json.Marshal(map[string]string{"version": strconv.Itoa(version)})
	err := r.native(ctx, http.MethodPost, "/apis/registry/v3/groups/default/artifacts/"+url.PathEscape(subject)+"/branches/latest/versions", "application/json", body, nil)
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusConflict {
		return fmt.Errorf("schema registry of %s: subject %s version %d is imported but its \"latest\" branch is system-defined (the subject was first registered on the target itself), so \"latest\" does not move: %s", r.Alias, subject, version, he.body)
	}
	return err
}
