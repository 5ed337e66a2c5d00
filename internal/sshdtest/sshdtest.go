// Package sshdtest starts a real OpenSSH sshd for tests: on 127.0.0.1 and
// a free port, with its own host key, trusting the user certificate
// authorities it is given (TrustedUserCAKeys) and accepting, for the
// current user, exactly the principals it is given
// (AuthorizedPrincipalsFile). sshd runs in the foreground (-D -e) with
// LogLevel VERBOSE and its log is captured, so a test can find the
// "Accepted publickey … ID <key id> (serial N) CA …" line of a login.
//
// Under CI (CI=true) a missing /usr/sbin/sshd or /usr/bin/ssh fails the
// test; elsewhere it is skipped with a message saying what to install.
package sshdtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Paths of the OpenSSH programs (Debian's openssh-server and
// openssh-client).
var (
	SSHDPath = "/usr/sbin/sshd"
	SSHPath  = "/usr/bin/ssh"
)

// Require skips t (or, when CI is set, fails it) unless sshd and ssh are
// installed.
func Require(t testing.TB) {
	t.Helper()
	for _, p := range []string{SSHDPath, SSHPath} {
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI (apt-get install openssh-server openssh-client): %v", p, err)
			}
			t.Skipf("%s not found (apt-get install openssh-server openssh-client to run this test; required when CI is set)", p)
		}
	}
}

// Options configure the server.
type Options struct {
	// TrustedCAKeys are the user CAs sshd trusts (TrustedUserCAKeys).
	TrustedCAKeys []ssh.PublicKey
	// Principals are accepted for the current user
	// (AuthorizedPrincipalsFile); none means no certificate logs in.
	Principals []string
	// Config are further sshd_config lines.
	Config []string
}

// Server is a running sshd.
type Server struct {
	// Addr is "127.0.0.1:PORT"; Port the port; User the login name the
	// principals are authorized for (the current user).
	Addr string
	Port int
	User string
	// HostKey is the server's host key; Dir the directory holding its
	// files.
	HostKey ssh.PublicKey
	Dir     string

	knownHosts string
	log        *logBuffer
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Start starts sshd and stops it when t ends. It skips or fails t as
// Require does when OpenSSH is missing.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshdtest: current user: %v", err)
	}
	s := &Server{User: u.Username, Dir: t.TempDir(), log: &logBuffer{}, exited: make(chan struct{})}
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshdtest: %v", err)
		}
	}
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostKeyFile := filepath.Join(s.Dir, "ssh_host_ed25519_key")
	writePrivateKey(t, hostKeyFile, hostKey)
	signer, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	s.HostKey = signer.PublicKey()

	var cas bytes.Buffer
	for _, k := range opts.TrustedCAKeys {
		cas.Write(ssh.MarshalAuthorizedKey(k))
	}
	caFile := filepath.Join(s.Dir, "trusted_user_ca_keys")
	writeFile(t, caFile, cas.Bytes(), 0o644)
	principalsDir := filepath.Join(s.Dir, "principals")
	if err := os.Mkdir(principalsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(principalsDir, s.User), []byte(strings.Join(opts.Principals, "\n")+"\n"), 0o644)

	port, err := freePort()
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	lines := []string{
		"ListenAddress " + s.Addr,
		"HostKey " + hostKeyFile,
		"PidFile none",
		"LogLevel VERBOSE",
		"TrustedUserCAKeys " + caFile,
		"AuthorizedPrincipalsFile " + principalsDir + "/%u",
		// Certificates only: no authorized_keys, no passwords.
		"AuthorizedKeysFile none",
		"AuthenticationMethods publickey",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		// The temporary directory is under world-writable /tmp.
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"X11Forwarding no",
		"PrintMotd no",
		"Banner none",
		"MaxStartups 100",
	}
	lines = append(lines, opts.Config...)
	cfgFile := filepath.Join(s.Dir, "sshd_config")
	writeFile(t, cfgFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600)

	var kh bytes.Buffer
	kh.WriteString("[127.0.0.1]:" + strconv.Itoa(port) + " ")
	kh.Write(ssh.MarshalAuthorizedKey(s.HostKey))
	s.knownHosts = filepath.Join(s.Dir, "known_hosts")
	writeFile(t, s.knownHosts, kh.Bytes(), 0o644)

	// sshd wants an absolute path to re-execute itself.
	s.cmd = exec.Command(SSHDPath, "-D", "-e", "-f", cfgFile)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("sshdtest: start sshd: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	if _, err := s.WaitLog(regexp.MustCompile(`Server listening on 127\.0\.0\.1 port `+strconv.Itoa(port)), 10*time.Second); err != nil {
		t.Fatalf("sshdtest: sshd did not start: %v\n%s", err, s.Log())
	}
	return s
}

// Log is everything sshd has written so far.
func (s *Server) Log() string { return s.log.String() }

// WaitLog waits up to timeout for a log line matching re and returns the
// first such line. It fails early when sshd exits.
func (s *Server) WaitLog(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, line := range strings.Split(s.Log(), "\n") {
			if re.MatchString(line) {
				return line, nil
			}
		}
		select {
		case <-s.exited:
			return "", fmt.Errorf("sshd exited before a line matched %s", re)
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no sshd log line matched %s within %s", re, timeout)
		}
		s.log.wait(deadline)
	}
}

// Identity is a key pair and its certificate written as files for ssh -i.
type Identity struct {
	KeyFile  string
	CertFile string
}

// WriteIdentity writes key (an Ed25519 private key) and cert into a fresh
// directory under the server's, in the files ssh -i and CertificateFile
// read. A nil cert writes the key alone (ssh would otherwise pick up a
// certificate lying next to the key on its own).
func (s *Server) WriteIdentity(t testing.TB, key ed25519.PrivateKey, cert *ssh.Certificate) Identity {
	t.Helper()
	dir, err := os.MkdirTemp(s.Dir, "id-")
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{KeyFile: filepath.Join(dir, "id_ed25519")}
	writePrivateKey(t, id.KeyFile, key)
	if cert != nil {
		id.CertFile = filepath.Join(dir, "id_ed25519-cert.pub")
		writeFile(t, id.CertFile, ssh.MarshalAuthorizedKey(cert), 0o644)
	}
	return id
}

// Result is what one ssh run gave.
type Result struct {
	Stdout, Stderr string
	// Err is the run's error (an *exec.ExitError for a non-zero exit;
	// ssh exits 255 when it could not log in).
	Err error
}

// SSH runs /usr/bin/ssh as s.User to the server with id and no other
// identity, agent or configuration, host key checked against the server's
// own, and returns the output. args are what follows the destination on
// ssh's command line: ssh options first if any (ssh reads options after
// the destination too, e.g. "-o", "ExitOnForwardFailure=yes"), then the
// remote command (its words joined and run by the remote shell).
func (s *Server) SSH(ctx context.Context, id Identity, args ...string) Result {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, SSHPath, append(s.ClientArgs(id), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = nil
	err := cmd.Run()
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// ClientArgs are the ssh arguments SSH uses, up to but not including the
// command: for tests that run ssh themselves (through `airlock ssh`, say).
func (s *Server) ClientArgs(id Identity) []string {
	args := []string{
		"-F", "/dev/null",
		"-p", strconv.Itoa(s.Port),
		"-l", s.User,
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no",
		"-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR",
	}
	if id.KeyFile != "" {
		args = append(args, "-i", id.KeyFile)
	}
	if id.CertFile != "" {
		args = append(args, "-o", "CertificateFile="+id.CertFile)
	}
	return append(args, "127.0.0.1")
}

// KnownHostsFile is the known_hosts file naming the server's host key.
func (s *Server) KnownHostsFile() string { return s.knownHosts }

func writePrivateKey(t testing.TB, path string, key ed25519.PrivateKey) {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, pem.EncodeToMemory(blk), 0o600)
}

func writeFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; ssh insists on 0600 keys.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logBuffer collects sshd's output and wakes waiters on each write.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// wait blocks until the next write or the deadline (at most 100 ms, so a
// caller also notices sshd exiting).
func (b *logBuffer) wait(deadline time.Time) {
	b.mu.Lock()
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	ch := b.wake
	b.mu.Unlock()
	d := min(time.Until(deadline), 100*time.Millisecond)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	}
}
