package outsider_test

import (
	"bufio"
	"bytes"
	"fmt"
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

// evidence is what an operator hands an outsider: the export, the latest
// checkpoint, the verifier key, and inclusion proofs (JSON) by seq.
type evidence struct {
	export     []byte
	checkpoint []byte
	pubkey     string
	proofs     map[int64][]byte
}

// produce builds the airlock binary, runs `airlock serve` on a fresh data
// directory, makes it record some events (refused enrolment links are
// audited), stops it with SIGTERM (which signs a final checkpoint) and
// collects the evidence with `airlock audit export|checkpoint|pubkey|proof`.
// Nothing here reads Airlock's store or imports Airlock's code.
func produce(t *testing.T) evidence {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the go command is needed to build airlock")
		}
		t.Skip("the go command is needed to build airlock")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "airlock")
	build := exec.Command("go", "build", "-o", bin, "airlock/cmd/airlock")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(tmp, "data")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	serve := exec.Command(bin, "serve", "--listen", "localhost:"+port, "--data", data)
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil { // the bootstrap line
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	base := "http://localhost:" + port
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never became ready: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 20 {
		res, err := http.Get(fmt.Sprintf("%s/enrol?token=not-a-token-%d", base, i))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}

	cli := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"audit"}, args...)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("airlock audit %v: %v\n%s", args, err, errb.String())
		}
		return out
	}
	ev := evidence{
		checkpoint: cli("checkpoint", "--data", data),
		pubkey:     strings.TrimSpace(string(cli("pubkey", "--data", data))),
		proofs:     map[int64][]byte{},
	}
	// The proofs first: proof and export are themselves audited, so the
	// export (taken last) holds every event the proofs name.
	size := checkpointSize(t, ev.checkpoint)
	for seq := int64(1); seq <= size; seq++ {
		ev.proofs[seq] = cli("proof", "--data", data, strconv.FormatInt(seq, 10))
	}
	ev.export = cli("export", "--data", data)
	return ev
}

// checkpointSize reads the second line of a checkpoint note.
func checkpointSize(t *testing.T, cp []byte) int64 {
	t.Helper()
	lines := strings.Split(string(cp), "\n")
	if len(lines) < 3 {
		t.Fatalf("checkpoint %q", cp)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint size %q", lines[1])
	}
	return n
}
