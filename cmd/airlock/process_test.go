package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets a test run the real binary's main as a child process (the
// test binary re-executed with AIRLOCK_TEST_MAIN=1), to test signals and
// exit codes exactly as an operator sees them.
func TestMain(m *testing.M) {
	if os.Getenv("AIRLOCK_TEST_MAIN") == "1" {
		main()
		return
	}
	if os.Getenv(auditLoadEnv) != "" { // audit_crash_test.go
		auditLoadChild()
		return
	}
	os.Exit(m.Run())
}

func TestServeGracefulShutdownOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	port := strconv.Itoa(freePort(t))
	cmd := exec.Command(os.Args[0], "serve", "--listen", "localhost:"+port, "--data", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "AIRLOCK_TEST_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no bootstrap line: %v; stderr: %s", err, stderr.String())
	}
	if !strings.HasPrefix(line, "bootstrap enrolment: http://localhost:"+port+"/enrol?token=") {
		t.Fatalf("bootstrap line %q", line)
	}
	waitReady(t, "http://localhost:"+port, nil)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not stop within 20 s of SIGTERM; stderr: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Fatalf("no shutdown log: %s", stderr.String())
	}
	if strings.Contains(stderr.String(), line[len("bootstrap enrolment: "):len(line)-1]) {
		t.Fatal("the bootstrap link (a secret) reached the log")
	}
}

func waitReady(t *testing.T, base string, client *http.Client) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", base)
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	port := freePort(t)
	cfg := DefaultConfig()
	cfg.Listen = "localhost:" + strconv.Itoa(port)
	cfg.Data = filepath.Join(dir, "data")
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	m := &Main{Config: cfg, Stdout: &strings.Builder{}}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if want := "https://localhost:" + strconv.Itoa(port); m.Origin != want {
		t.Fatalf("derived origin %q, want %q", m.Origin, want)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitReady(t, m.Origin, client)
	// A passkey login over https gets the __Host- prefixed, Secure cookie.
	out := m.Stdout.(*strings.Builder).String()
	s := &cliServer{t: t, m: m, base: m.Origin, origin: m.Origin, client: client}
	if token := s.enrolAndLogin(strings.TrimSpace(strings.TrimPrefix(out, "bootstrap enrolment: "))); token == "" {
		t.Fatal("no bearer token")
	}
	if len(s.lastCookies) != 1 {
		t.Fatalf("cookies %v", s.lastCookies)
	}
	c := s.lastCookies[0]
	if c.Name != "__Host-airlock_session" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("https cookie %+v", c)
	}
}

func selfSignedCert(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
