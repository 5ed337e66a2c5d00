package passkey

import (
	"context"
	"sync"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
	"airlock/sqlite"
)

// fuzzStore keeps ceremonies in memory and everything else in SQLite. The
// fuzzer needs executions whose coverage repeats: with every ceremony
// written to and deleted from SQLite, the database's own branches (page
// allocation, WAL checkpoints) differ from run to run, so each input looks
// new and the fuzzer spends its time trying to minimize it.
type fuzzStore struct {
	*sqlite.Store
	mu  sync.Mutex
	cer map[string]*airlock.Ceremony
}

func (s *fuzzStore) CreateCeremony(_ context.Context, c *airlock.Ceremony) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *c
	s.cer[c.ID] = &cp
	return nil
}

func (s *fuzzStore) ConsumeCeremony(_ context.Context, id string) (*airlock.Ceremony, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cer[id]
	if !ok {
		return nil, airlock.Errorf(airlock.ENOTFOUND, "ceremony not found")
	}
	delete(s.cer, id)
	return c, nil
}

// newFuzzHarness is a harness whose service uses fuzzStore and discards
// audit records.
func newFuzzHarness(f *testing.F) *harness {
	h := newHarness(f, nil)
	h.aud.discard = true
	svc, err := New(h.cfg, &fuzzStore{Store: h.store, cer: map[string]*airlock.Ceremony{}}, h.aud, h.not)
	if err != nil {
		f.Fatal(err)
	}
	h.svc = svc
	return h
}

// FuzzFinishLogin feeds arbitrary bytes as the credential JSON of a valid
// login ceremony: FinishLogin must never panic and never accept garbage (the
// challenge is new for every input, so no input can be a valid assertion).
func FuzzFinishLogin(f *testing.F) {
	h := newFuzzHarness(f)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	a := passkeytest.New()
	h.enrol(a, u, d)
	_, opt := h.beginLogin()
	for _, o := range [][]passkeytest.Option{nil, {passkeytest.WithClientDataType("webauthn.create")}, {passkeytest.WithBadSignature()}, {passkeytest.WithUserHandle(nil)}} {
		resp, err := a.Assert(testOrigin, opt, o...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := h.svc.BeginLogin(h.ctx, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.svc.FinishLogin(h.ctx, b.Ceremony, data, Meta{})
		if err == nil || res != nil {
			t.Fatalf("FinishLogin accepted %q", data)
		}
		if ReasonOf(err) == "" {
			t.Fatalf("error without a reason: %v", err)
		}
	})
}

// FuzzFinishEnrol does the same for FinishEnrol on a valid enrolment
// ceremony.
func FuzzFinishEnrol(f *testing.F) {
	h := newFuzzHarness(f)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	secret, _ := h.token(u, d)
	_, opt := h.beginEnrol(secret)
	for _, o := range [][]passkeytest.Option{nil, {passkeytest.WithFormat("none")}, {passkeytest.WithAlg(passkeytest.EdDSA)}, {passkeytest.WithAlg(passkeytest.RS256)}, {passkeytest.WithBadSignature()}} {
		resp, _, err := passkeytest.New().Register(testOrigin, opt, o...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(resp)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := h.svc.BeginEnrol(h.ctx, secret, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.svc.FinishEnrol(h.ctx, b.Ceremony, data, Meta{})
		if err == nil || res != nil {
			t.Fatalf("FinishEnrol accepted %q", data)
		}
		if ReasonOf(err) == "" {
			t.Fatalf("error without a reason: %v", err)
		}
	})
}
