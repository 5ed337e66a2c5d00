package passkey

import (
	"context"
	"sync"
	"testing"

	"airlock"
	"airlock/passkey/passkeytest"
	"airlock/sqlite"
)

// fuzzStore keeps ceremonies in memory and, once frozen, answers the
// reads of users, devices, enrolment tokens and credentials from a
// snapshot in memory too; everything else goes to SQLite. The fuzzer needs
// executions whose coverage repeats: with every ceremony written to and
// deleted from SQLite, and every begin/finish reading rows through a pool
// of connections, the database's own branches (page allocation, WAL
// checkpoints, statement preparation on a fresh connection) differ from
// run to run, so each input looks new and the fuzzer spends its time
// trying to minimize it instead of fuzzing. The fuzz targets never succeed,
// so nothing they do changes the snapshot.
type fuzzStore struct {
	*sqlite.Store
	mu  sync.Mutex
	cer map[string]*airlock.Ceremony

	frozen      bool
	users       map[string]airlock.User
	byHandle    map[string]string // handle → user ID
	devices     map[string]airlock.Device
	tokens      map[string]airlock.EnrolmentToken
	tokenByHash map[string]string // hash → token ID
	creds       map[string]airlock.Credential
	credsByUser map[string][][]byte
	tier0Admin  bool
}

// freeze snapshots the rows the ceremonies read.
func (s *fuzzStore) freeze(ctx context.Context) error {
	s.users, s.byHandle = map[string]airlock.User{}, map[string]string{}
	s.devices = map[string]airlock.Device{}
	s.tokens, s.tokenByHash = map[string]airlock.EnrolmentToken{}, map[string]string{}
	s.creds, s.credsByUser = map[string]airlock.Credential{}, map[string][][]byte{}
	users, err := s.Store.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		s.users[u.ID] = *u
		s.byHandle[string(u.Handle)] = u.ID
		creds, err := s.Store.ListCredentialsByUser(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, c := range creds {
			s.creds[string(c.ID)] = *c
			s.credsByUser[u.ID] = append(s.credsByUser[u.ID], c.ID)
		}
	}
	devices, err := s.Store.ListDevices(ctx)
	if err != nil {
		return err
	}
	for _, d := range devices {
		s.devices[d.ID] = *d
	}
	tokens, err := s.Store.ListEnrolmentTokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		s.tokens[t.ID] = *t
		s.tokenByHash[string(t.Hash)] = t.ID
	}
	if s.tier0Admin, err = s.Store.HasActiveTier0Admin(ctx); err != nil {
		return err
	}
	s.frozen = true
	return nil
}

func notFoundErr(what string) error { return airlock.Errorf(airlock.ENOTFOUND, "%s not found", what) }

func (s *fuzzStore) FindUserByID(ctx context.Context, id string) (*airlock.User, error) {
	if !s.frozen {
		return s.Store.FindUserByID(ctx, id)
	}
	u, ok := s.users[id]
	if !ok {
		return nil, notFoundErr("user")
	}
	return &u, nil
}

func (s *fuzzStore) FindUserByHandle(ctx context.Context, h []byte) (*airlock.User, error) {
	if !s.frozen {
		return s.Store.FindUserByHandle(ctx, h)
	}
	id, ok := s.byHandle[string(h)]
	if !ok {
		return nil, notFoundErr("user")
	}
	return s.FindUserByID(ctx, id)
}

func (s *fuzzStore) FindDeviceByID(ctx context.Context, id string) (*airlock.Device, error) {
	if !s.frozen {
		return s.Store.FindDeviceByID(ctx, id)
	}
	d, ok := s.devices[id]
	if !ok {
		return nil, notFoundErr("device")
	}
	return &d, nil
}

func (s *fuzzStore) FindEnrolmentTokenByID(ctx context.Context, id string) (*airlock.EnrolmentToken, error) {
	if !s.frozen {
		return s.Store.FindEnrolmentTokenByID(ctx, id)
	}
	t, ok := s.tokens[id]
	if !ok {
		return nil, notFoundErr("enrolment token")
	}
	return &t, nil
}

func (s *fuzzStore) FindEnrolmentTokenByHash(ctx context.Context, h []byte) (*airlock.EnrolmentToken, error) {
	if !s.frozen {
		return s.Store.FindEnrolmentTokenByHash(ctx, h)
	}
	id, ok := s.tokenByHash[string(h)]
	if !ok {
		return nil, notFoundErr("enrolment token")
	}
	return s.FindEnrolmentTokenByID(ctx, id)
}

func (s *fuzzStore) FindCredentialByID(ctx context.Context, id []byte) (*airlock.Credential, error) {
	if !s.frozen {
		return s.Store.FindCredentialByID(ctx, id)
	}
	c, ok := s.creds[string(id)]
	if !ok {
		return nil, notFoundErr("credential")
	}
	return &c, nil
}

func (s *fuzzStore) ListCredentialsByUser(ctx context.Context, userID string) ([]*airlock.Credential, error) {
	if !s.frozen {
		return s.Store.ListCredentialsByUser(ctx, userID)
	}
	out := []*airlock.Credential{}
	for _, id := range s.credsByUser[userID] {
		c := s.creds[string(id)]
		out = append(out, &c)
	}
	return out, nil
}

func (s *fuzzStore) HasActiveTier0Admin(ctx context.Context) (bool, error) {
	if !s.frozen {
		return s.Store.HasActiveTier0Admin(ctx)
	}
	return s.tier0Admin, nil
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
// audit records. Call the returned freeze after setting up the rows.
func newFuzzHarness(f *testing.F) (*harness, func()) {
	h := newHarness(f, nil)
	h.aud.discard = true
	fs := &fuzzStore{Store: h.store, cer: map[string]*airlock.Ceremony{}}
	svc, err := New(h.cfg, fs, h.aud, h.not)
	if err != nil {
		f.Fatal(err)
	}
	h.svc = svc
	return h, func() {
		if err := fs.freeze(h.ctx); err != nil {
			f.Fatal(err)
		}
	}
}

// FuzzFinishLogin feeds arbitrary bytes as the credential JSON of a valid
// login ceremony: FinishLogin must never panic and never accept garbage (the
// challenge is new for every input, so no input can be a valid assertion).
func FuzzFinishLogin(f *testing.F) {
	h, freeze := newFuzzHarness(f)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	a := passkeytest.New()
	h.enrol(a, u, d)
	freeze()
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
	h, freeze := newFuzzHarness(f)
	u := h.user("alice", 0)
	d := h.device("laptop", u.ID)
	secret, _ := h.token(u, d)
	freeze()
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
