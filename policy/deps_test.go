package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the engine pure (DESIGN.md: "policy performs no I/O"): it
// must not reach the network, a database or other processes, directly or
// through a dependency.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := map[string]bool{"net": true, "net/http": true, "database/sql": true, "os/exec": true, "crypto/tls": true}
	for _, dep := range strings.Fields(string(out)) {
		if banned[dep] || strings.HasPrefix(dep, "net/http/") || strings.HasPrefix(dep, "airlock/sqlite") || strings.HasPrefix(dep, "airlock/postgres") {
			t.Errorf("policy depends on %s", dep)
		}
	}
}
