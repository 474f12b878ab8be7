package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/twmb/franz-go/pkg/sasl"
)

// TestMSKIAMSignedPayload builds the aws_msk_iam mechanism from a config,
// with static credentials in the environment (the first link of the AWS
// default chain; no AWS access), and checks the authentication payload
// against the AWS SDK's own SigV4 presigner.
func TestMSKIAMSignedPayload(t *testing.T) {
	const (
		accessKey = "AKIAGODWITTESTKEY000"
		secretKey = "godwitTestSecretKey/DoNotUse+0123456789ab"
		token     = "godwit-test-session-token"
		host      = "b-1.dr.abc123.c2.kafka.eu-west-1.amazonaws.com"
	)
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secretKey)
	t.Setenv("AWS_SESSION_TOKEN", token)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")

	c := parseCluster(t, "msk", `
		bootstrap_servers: ["`+host+`:9098"]
		sasl: {mechanism: aws_msk_iam, region: eu-west-1}`)
	if !c.Config.TLS.IsEnabled() {
		t.Fatal("aws_msk_iam must turn TLS on by default")
	}
	mech, err := c.mechanism()
	if err != nil {
		t.Fatal(err)
	}
	if mech.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %q", mech.Name())
	}
	before := time.Now().UTC().Truncate(time.Second)
	_, payload, err := mech.Authenticate(context.Background(), host+":9098")
	if err != nil {
		t.Fatal(err)
	}
	var kv map[string]string
	if err := json.Unmarshal(payload, &kv); err != nil {
		t.Fatalf("payload is not a JSON object: %v\n%s", err, payload)
	}
	want := map[string]string{
		"version":              "2020_10_22",
		"host":                 host,
		"action":               "kafka-cluster:Connect",
		"x-amz-algorithm":      "AWS4-HMAC-SHA256",
		"x-amz-signedheaders":  "host",
		"x-amz-expires":        "900",
		"x-amz-security-token": token,
		"user-agent":           "godwit",
	}
	for k, v := range want {
		if kv[k] != v {
			t.Errorf("payload %s = %q, want %q", k, kv[k], v)
		}
	}
	signedAt, err := time.Parse("20060102T150405Z", kv["x-amz-date"])
	if err != nil {
		t.Fatalf("x-amz-date %q: %v", kv["x-amz-date"], err)
	}
	if signedAt.Before(before) || signedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("x-amz-date %v is not now", signedAt)
	}
	scope := signedAt.Format("20060102") + "/eu-west-1/kafka-cluster/aws4_request"
	if got := kv["x-amz-credential"]; got != accessKey+"/"+scope {
		t.Errorf("x-amz-credential = %q, want %q", got, accessKey+"/"+scope)
	}
	if strings.Contains(string(payload), secretKey) {
		t.Error("payload carries the secret key")
	}

	// The AWS SDK presigns the same request independently.
	q := url.Values{}
	q.Set("Action", "kafka-cluster:Connect")
	q.Set("X-Amz-Expires", "900")
	req, err := http.NewRequest(http.MethodGet, "https://"+host+"/?"+strings.ReplaceAll(q.Encode(), "+", "%20"), nil)
	if err != nil {
		t.Fatal(err)
	}
	const emptyBody = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, SessionToken: token},
		req, emptyBody, "kafka-cluster", "eu-west-1", signedAt)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kv["x-amz-signature"], u.Query().Get("X-Amz-Signature"); got == "" || got != want {
		t.Errorf("x-amz-signature = %q, the AWS SDK signs %q", got, want)
	}

	// A second authentication reuses the cached credentials.
	if _, _, err := mech.Authenticate(context.Background(), host+":9098"); err != nil {
		t.Fatal(err)
	}
}

// TestMSKIAMAssumeRoleConfigured checks that role_arn builds an
// assume-role provider without calling AWS at build time.
func TestMSKIAMAssumeRoleConfigured(t *testing.T) {
	c := parseCluster(t, "mskrole", `
		bootstrap_servers: ["b-1.x.kafka.us-east-1.amazonaws.com:9098"]
		sasl: {mechanism: aws_msk_iam, role_arn: "arn:aws:iam::123456789012:role/godwit-dr"}`)
	var m sasl.Mechanism
	m, err := c.mechanism()
	if err != nil || m == nil {
		t.Fatalf("mechanism: %v", err)
	}
	p := iamProviderFor(c)
	if p.roleARN != "arn:aws:iam::123456789012:role/godwit-dr" {
		t.Errorf("role %q", p.roleARN)
	}
	if got := sessionName("a b/c"); got != "godwit-a_b_c" {
		t.Errorf("sessionName = %q", got)
	}
}

// TestInsecureWarningLoggedOnce: insecure_skip_verify is announced loudly
// when the first client is built, once per process.
func TestInsecureWarningLoggedOnce(t *testing.T) {
	c := parseCluster(t, "insecure", `
		bootstrap_servers: ["127.0.0.1:1"]
		tls: {insecure_skip_verify: true}`)
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for range 3 {
		cl, err := c.Client("warn", log)
		if err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	if n := strings.Count(buf.String(), "INSECURE OR INEFFECTIVE SETTING: clusters.insecure.tls.insecure_skip_verify is true"); n != 1 {
		t.Errorf("warning logged %d times:\n%s", n, buf.String())
	}
}
