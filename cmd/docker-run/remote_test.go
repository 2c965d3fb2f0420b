package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dockerrun/dockerrun"
	"github.com/dockerrun/dockerrun/internal/serverproc"
	"github.com/dockerrun/dockerrun/internal/testenv"
)

// certAuthority is a CA made for a test.
type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *certAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &certAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate and its key, PEM-encoded, signed by ca: a
// server certificate for 127.0.0.1, or a client certificate.
func (ca *certAuthority) issue(t *testing.T, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// writeFiles writes name -> content into a new directory and returns it.
func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestServerRemoteEngineTLS drives a second Docker daemon that listens on a
// loopback TCP port with TLS, as a remote engine: DOCKER_HOST,
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, with certificates made here. Runs
// succeed there, leftovers there are reaped, and a wrong certificate stops
// the server at start-up with a message that says what to check.
func TestServerRemoteEngineTLS(t *testing.T) {
	python := testenv.LanguageImages(t, "python")[0]
	ca := newCA(t, "dockerrun test CA")
	serverCert, serverKey := ca.issue(t, "dockerd", true)
	clientCert, clientKey := ca.issue(t, "docker-run", false)
	daemonDir := writeFiles(t, map[string][]byte{"ca.pem": ca.pem, "cert.pem": serverCert, "key.pem": serverKey})
	addr := testenv.FreeAddr(t)
	d := testenv.StartDockerd(t, testenv.DockerdOptions{Args: []string{
		"--host", "tcp://" + addr, "--tlsverify",
		"--tlscacert", filepath.Join(daemonDir, "ca.pem"),
		"--tlscert", filepath.Join(daemonDir, "cert.pem"),
		"--tlskey", filepath.Join(daemonDir, "key.pem"),
	}})
	d.LoadImages(t, python)
	local := d.Client(t) // over its unix socket, to look
	ctx := context.Background()

	tlsEnv := func(certDir string) []string {
		return []string{"DOCKER_HOST=tcp://" + addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + certDir}
	}
	good := writeFiles(t, map[string][]byte{"ca.pem": ca.pem, "cert.pem": clientCert, "key.pem": clientKey})

	// A container of this owner left on the remote engine by a dead
	// instance: the server reaps it at start-up.
	const owner = "tls-remote"
	leftover, err := local.ContainerCreate(ctx, &container.Config{
		Image:  python,
		Labels: map[string]string{dockerrun.LabelOwner: owner, dockerrun.LabelInstance: "dead"},
	}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatalf("create a leftover container on the TLS daemon: %v", err)
	}

	s := testenv.StartServerWith(t, testenv.ServerOptions{Env: tlsEnv(good), Owner: owner, Docker: local})
	if _, err := local.ContainerInspect(ctx, leftover.ID); err == nil {
		t.Errorf("the leftover container %s is still on the TLS daemon after the server started", leftover.ID[:12])
	}

	// A run's container is on the remote engine while it runs.
	slow := make(chan error, 1)
	go func() {
		status, body, err := s.Run(ctx, python, map[string]any{"language": "python", "files": []map[string]string{{"name": "main.py", "content": "import time\ntime.sleep(1)\nprint(42)"}}})
		if err == nil && (status != http.StatusOK || !strings.Contains(string(body), `"stdout":"42\n"`)) {
			err = &answerError{status, body}
		}
		slow <- err
	}()
	testenv.WaitContainersOn(t, local, dockerrun.LabelOwner, owner, 30*time.Second, "the run's container on the TLS daemon",
		func(list []container.Summary) bool { return len(list) == 1 })
	if err := <-slow; err != nil {
		t.Fatalf("run through the TLS daemon: %v", err)
	}
	for i := range 3 {
		status, body, err := s.Run(ctx, python, map[string]any{"language": "python", "files": []map[string]string{{"name": "main.py", "content": "print(6*7)"}}})
		if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"stdout":"42\n"`) {
			t.Fatalf("run #%d through the TLS daemon: %d %s %v", i, status, body, err)
		}
	}
	if list := testenv.ContainersOn(t, testenv.Docker(t), dockerrun.LabelOwner, owner); len(list) != 0 {
		t.Errorf("%d containers of owner %s on the shared daemon: the runs must go to the remote engine", len(list), owner)
	}

	// Wrong certificates: the server stops at start-up and says what to
	// check.
	otherCA := newCA(t, "another CA")
	otherCert, otherKey := otherCA.issue(t, "docker-run", false)
	tests := []struct {
		name  string
		files map[string][]byte
	}{
		{name: "daemon's certificate from an unknown CA", files: map[string][]byte{"ca.pem": otherCA.pem, "cert.pem": clientCert, "key.pem": clientKey}},
		{name: "client certificate the daemon does not trust", files: map[string][]byte{"ca.pem": ca.pem, "cert.pem": otherCert, "key.pem": otherKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := serverproc.Start(ctx, testenv.ServerBinary(t), serverproc.Options{
				Env:           append(tlsEnv(writeFiles(t, tt.files)), "SERVER_INSTANCE_NAME=tls-wrong"),
				ListenTimeout: time.Minute,
			})
			if err == nil {
				p.Kill()
				t.Fatalf("the server started with a wrong certificate")
			}
			for _, want := range []string{"TLS handshake with the Docker daemon", "DOCKER_CERT_PATH"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("start-up error does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// answerError is an unexpected answer of the server.
type answerError struct {
	status int
	body   []byte
}

func (e *answerError) Error() string { return http.StatusText(e.status) + ": " + string(e.body) }
