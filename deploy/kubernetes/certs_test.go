package kubernetes

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// create-certs.sh makes Secrets that decode as Kubernetes objects, with a
// daemon certificate that every pod's DNS name verifies against (the name
// Larder's SRV source checks) and the Service's (AddressRecords), and a
// client certificate the same CA signed for client authentication.
func TestCreateCertsMakesTheSecrets(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no %s: %v", tool, err)
			}
			t.Skipf("no %s: %v", tool, err)
		}
	}
	m := load(t)
	dir := t.TempDir()
	cmd := exec.Command("./create-certs.sh", "ci")
	cmd.Env = append(os.Environ(), "CERTS_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create-certs.sh: %v\n%s", err, out)
	}
	secrets := map[string]*corev1.Secret{}
	for _, name := range []string{"buildkit-daemon-certs", "buildkit-client-certs"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		objs := decodeAll(t, name+".yaml", b)
		s, ok := objs[0].(*corev1.Secret)
		if len(objs) != 1 || !ok || s.Name != name {
			t.Fatalf("%s.yaml: %v, want the Secret %s", name, objs, name)
		}
		for _, k := range []string{"ca.pem", "cert.pem", "key.pem"} {
			if len(s.Data[k]) == 0 {
				t.Errorf("Secret %s has no %s", name, k)
			}
		}
		secrets[name] = s
	}
	daemon, client := secrets["buildkit-daemon-certs"].Data, secrets["buildkit-client-certs"].Data
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(daemon["ca.pem"]) || string(daemon["ca.pem"]) != string(client["ca.pem"]) {
		t.Fatal("the two Secrets do not hold the same CA")
	}
	leaf := func(d map[string][]byte) *x509.Certificate {
		t.Helper()
		if _, err := tls.X509KeyPair(d["cert.pem"], d["key.pem"]); err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(d["cert.pem"])
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	svc := m.service
	names := []string{fmt.Sprintf("%s.ci.svc.cluster.local", svc.Name)}
	for _, ss := range m.sets {
		for i := range 10 { // the replicas, and more after scaling up
			names = append(names, fmt.Sprintf("%s-%d.%s.ci.svc.cluster.local", ss.Name, i, ss.Spec.ServiceName))
		}
	}
	server := leaf(daemon)
	for _, n := range names {
		if _, err := server.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the daemon certificate for %s: %v", n, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{DNSName: "buildkitd-amd64-0.buildkitd.other.svc.cluster.local", Roots: pool}); err == nil {
		t.Errorf("the daemon certificate holds another namespace's pods")
	}
	if _, err := leaf(client).Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the client certificate: %v", err)
	}
	t.Logf("the daemon certificate holds %v", server.DNSNames)
}

// README.md says what the manifests hold: the SRV name their Service
// publishes, the files and Secrets it names, the version it runs.
func TestReadmeMatchesTheManifests(t *testing.T) {
	m := load(t)
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	svc := m.service
	srv := fmt.Sprintf("_%s._tcp.%s.ci.svc.cluster.local", svc.Spec.Ports[0].Name, svc.Name)
	want := []string{
		fmt.Sprintf("remote.SRV(%q)", srv),
		fmt.Sprintf("_%s._tcp.%s.<namespace>.svc.cluster.local", svc.Spec.Ports[0].Name, svc.Name),
		fmt.Sprintf("port `%s` (%d)", svc.Spec.Ports[0].Name, svc.Spec.Ports[0].Port),
		"buildkit-daemon-certs", "buildkit-client-certs", "/var/lib/buildkit",
		`remote.WithTLS("/certs/ca.pem", "/certs/cert.pem", "/certs/key.pem")`,
	}
	for arch, ss := range m.sets {
		c := ss.Spec.Template.Spec.Containers[0]
		want = append(want, "`"+c.Image+"`", ss.Name, "statefulset-"+arch+".yaml",
			fmt.Sprintf("%d-second grace", *ss.Spec.Template.Spec.TerminationGracePeriodSeconds),
			fmt.Sprintf("serving for %s seconds", c.Lifecycle.PreStop.Exec.Command[1]),
			fmt.Sprintf("--node %s", ss.Name))
	}
	for _, w := range want {
		if !strings.Contains(readme, w) {
			t.Errorf("README.md does not say %q", w)
		}
	}
	// Every file it names in backquotes exists.
	for _, f := range regexp.MustCompile("`([a-z0-9-]+\\.(?:yaml|sh))`").FindAllStringSubmatch(readme, -1) {
		if _, err := os.Stat(f[1]); err != nil && !strings.HasPrefix(f[1], "statefulset.") {
			t.Errorf("README.md names %s: %v", f[1], err)
		}
	}
}
