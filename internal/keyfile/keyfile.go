// Package keyfile keeps private signing keys in files: created once, with
// mode 0600, never half-written and never overwritten, so that several
// processes starting together on one data directory end up with one key.
// The audit checkpoint key, the SSH CA key and the grant-token key use it.
package keyfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteExclusive writes b to path with mode 0600 unless a file is there
// already, in which case it writes nothing and made is false. The content
// goes to a temporary file in the same directory first (synced) and is
// linked into place, so nobody ever reads a half-written key; the directory
// is created 0700 if missing and synced afterwards.
func WriteExclusive(path string, b []byte) (made bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return true, nil
}

// LoadOrCreate returns the key load reads from path or, when there is no
// file there (load's error wraps fs.ErrNotExist), a key from generate,
// written with WriteExclusive. If another process wrote the file first,
// its key is loaded instead. created reports whether this call wrote the
// file. Any other load error (a corrupt file) is returned and the file is
// left alone.
func LoadOrCreate[K any](path string, load func(path string) (K, error), generate func() (K, []byte, error)) (key K, created bool, err error) {
	if k, err := load(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k, b, err := generate()
	if err != nil {
		return key, false, err
	}
	made, err := WriteExclusive(path, b)
	if err != nil {
		return key, false, err
	}
	if !made {
		k, err := load(path)
		return k, false, err
	}
	return k, true, nil
}
