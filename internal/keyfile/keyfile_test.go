package keyfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func load(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 0 {
		return nil, errors.New("empty key file")
	}
	return b, err
}

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "k.key")
	gen := func() ([]byte, []byte, error) { return []byte("key-1"), []byte("key-1"), nil }
	k, created, err := LoadOrCreate(path, load, gen)
	if err != nil || !created || string(k) != "key-1" {
		t.Fatalf("first: %q %v %v", k, created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if d, _ := os.Stat(filepath.Dir(path)); d.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", d.Mode())
	}
	// An existing key is loaded, never replaced.
	gen2 := func() ([]byte, []byte, error) { return []byte("key-2"), []byte("key-2"), nil }
	if k, created, err := LoadOrCreate(path, load, gen2); err != nil || created || string(k) != "key-1" {
		t.Fatalf("second: %q %v %v", k, created, err)
	}
	// A corrupt file is an error and is left alone.
	os.WriteFile(path, nil, 0o600)
	if _, _, err := LoadOrCreate(path, load, gen2); err == nil {
		t.Fatal("corrupt file accepted")
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatal("corrupt file overwritten")
	}
	// No temporary files are left behind.
	if es, _ := os.ReadDir(filepath.Dir(path)); len(es) != 1 {
		t.Errorf("directory holds %d entries", len(es))
	}
}

// TestLoadOrCreateRace: processes starting together end up with one key.
func TestLoadOrCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.key")
	const n = 16
	keys := make([][]byte, n)
	made := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := []byte{byte('a' + i)}
			k, created, err := LoadOrCreate(path, load, func() ([]byte, []byte, error) { return b, b, nil })
			if err != nil {
				t.Error(err)
			}
			keys[i], made[i] = k, created
		}()
	}
	wg.Wait()
	writers := 0
	for i := range n {
		if made[i] {
			writers++
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("process %d got key %q, process 0 %q", i, keys[i], keys[0])
		}
	}
	if writers != 1 {
		t.Fatalf("%d writers", writers)
	}
}
