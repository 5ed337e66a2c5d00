package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"airlock"
	"airlock/notify"
	"airlock/sqlite"
)

func TestOutboxSurvivesFailingReceiver(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	var mu sync.Mutex
	fail := true
	var got []notify.Message
	var sigs []string
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m notify.Message
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("bad body: %v", err)
		}
		got = append(got, m)
		bodies = append(bodies, b)
		sigs = append(sigs, r.Header.Get("X-Airlock-Signature"))
	}))
	defer srv.Close()

	out := notify.NewOutbox(st, clock)
	if err := out.Notify(ctx, "usr_1", "passkey.added", map[string]any{"device": "dev_1"}); err != nil {
		t.Fatal(err)
	}
	d := &notify.Dispatcher{Store: st, URL: srv.URL, Secret: "s3cret", Now: clock}

	// Receiver down: attempt recorded, nothing delivered.
	if n, err := d.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	ns, _ := st.ListNotificationsByUser(ctx, "usr_1")
	if len(ns) != 1 || ns[0].Attempts != 1 || ns[0].LastError == "" || !ns[0].DeliveredAt.IsZero() {
		t.Fatalf("after failure: %+v", ns)
	}
	// Not due again before the backoff.
	mu.Lock()
	fail = false
	mu.Unlock()
	if n, _ := d.RunOnce(ctx); n != 0 {
		t.Fatal("retried before backoff elapsed")
	}

	// Restart: a new store handle on the same file still has the notice.
	st.Close()
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d.Store = st
	now = now.Add(3 * time.Second)
	if n, err := d.RunOnce(ctx); err != nil || n != 1 {
		t.Fatalf("RunOnce after backoff = %d, %v", n, err)
	}
	if n, _ := d.RunOnce(ctx); n != 0 {
		t.Fatal("delivered twice")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Kind != "passkey.added" || got[0].UserID != "usr_1" || string(got[0].Data) != `{"device":"dev_1"}` {
		t.Fatalf("received %+v", got)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(fmt.Sprint(now.Unix()) + "."))
	mac.Write(bodies[0])
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sigs[0] != want {
		t.Fatalf("signature %q, want %q", sigs[0], want)
	}
	ns, _ = st.ListNotificationsByUser(ctx, "usr_1")
	if ns[0].DeliveredAt.IsZero() || ns[0].Attempts != 1 {
		t.Fatalf("after delivery: %+v", ns[0])
	}
	var _ airlock.NotificationStore = st
}

func TestDeliveryErrorsHideTheURL(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := notify.NewOutbox(st, nil).Notify(ctx, "usr_1", "passkey.added", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: the dial fails and the error would name the URL.
	d := &notify.Dispatcher{Store: st, URL: "http://127.0.0.1:1/hooks/SECRETPATH?key=APIKEY"}
	if n, err := d.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	ns, _ := st.ListNotificationsByUser(ctx, "usr_1")
	if len(ns) != 1 || ns[0].LastError == "" {
		t.Fatalf("failure not recorded: %+v", ns)
	}
	if strings.Contains(ns[0].LastError, "SECRETPATH") || strings.Contains(ns[0].LastError, "APIKEY") {
		t.Fatalf("recorded error leaks the receiver URL: %q", ns[0].LastError)
	}
}
