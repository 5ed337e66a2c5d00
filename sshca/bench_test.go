package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"airlock"
	"airlock/sqlite"
	"airlock/sshca"
)

// nopStore accepts every record: signing alone.
type nopStore struct{}

func (nopStore) CreateSSHCertificate(context.Context, *airlock.SSHCertificate) error { return nil }

// BenchmarkIssue measures certificates issued per second: signing alone
// (a store that keeps nothing) and with each record committed to SQLite
// (durable, one transaction per certificate), so that the ratio shows the
// store's share.
func BenchmarkIssue(b *testing.B) {
	run := func(b *testing.B, store sshca.Store) {
		f := newFixture(b, sshca.Config{})
		ca, err := sshca.New(f.caKey, store, sshca.Config{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, _, err := ca.Issue(ctx, f.grant, f.user, f.sess, f.key, sshca.Options{}, t0.Add(time.Duration(i)*time.Microsecond)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	}
	// The floor: one bare Ed25519 signature over a certificate-sized
	// message, what every certificate costs at least.
	b.Run("ed25519", func(b *testing.B) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		msg := make([]byte, 400)
		for b.Loop() {
			ed25519.Sign(priv, msg)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	})
	b.Run("sign", func(b *testing.B) { run(b, nopStore{}) })
	b.Run("sqlite", func(b *testing.B) {
		st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "a.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		run(b, st)
	})
}
