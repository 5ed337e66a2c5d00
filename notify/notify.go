// Package notify tells users about security events on their account (a new
// passkey, NIST SP 800-63B-4 §4.1.2.1) through a durable outbox and a webhook.
//
// Notify only enqueues: the notice is stored before Notify returns, so a
// receiver that is down loses nothing. A Dispatcher delivers due notices and
// retries failures with exponential backoff, recording every attempt.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"airlock"
)

// Outbox enqueues notifications durably.
type Outbox struct {
	store airlock.NotificationStore
	now   func() time.Time
}

// NewOutbox returns an Outbox over store; now may be nil (time.Now).
func NewOutbox(store airlock.NotificationStore, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{store: store, now: now}
}

// Message is the JSON body a webhook receiver gets.
type Message struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	UserID    string          `json:"user_id"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// Notify stores a notification of kind for userID with payload (marshalled
// to JSON) and returns once it is durable.
func (o *Outbox) Notify(ctx context.Context, userID, kind string, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return airlock.Wrap(airlock.EINTERNAL, "notification payload", err)
	}
	now := o.now().UTC()
	return o.store.EnqueueNotification(ctx, &airlock.Notification{
		Kind: kind, UserID: userID, Payload: data, NextAttempt: now, CreatedAt: now,
	})
}

// Sign returns the hex HMAC-SHA256 with secret over timestamp "." body, the
// value of X-Airlock-Signature after "sha256=". Receivers recompute it and
// reject stale timestamps, so a captured delivery cannot be replayed later.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Dispatcher delivers due notifications to a webhook.
type Dispatcher struct {
	Store airlock.NotificationStore
	// URL receives a POST of one Message per notification; a 2xx answer
	// counts as delivered.
	URL string
	// Secret, if set, signs each delivery: header X-Airlock-Timestamp is
	// the Unix time and X-Airlock-Signature is "sha256=" + Sign(Secret,
	// timestamp, body).
	Secret string
	Client *http.Client
	Now    func() time.Time
	Logger *slog.Logger
	// MaxBackoff caps the delay between attempts (default 1 h); the first
	// retry waits 2 s and each further one doubles.
	MaxBackoff time.Duration
}

// RunOnce delivers every due notification once and returns how many were
// delivered.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	now := d.now()
	due, err := d.Store.DueNotifications(ctx, now, 100)
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, n := range due {
		if err := d.deliver(ctx, n); err != nil {
			// The receiver URL often carries a secret: record and log the
			// cause, never the URL.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			next := d.now().Add(d.backoff(n.Attempts + 1))
			if merr := d.Store.MarkNotificationFailed(ctx, n.ID, err.Error(), next); merr != nil {
				return delivered, merr
			}
			if d.Logger != nil {
				d.Logger.Warn("notification delivery failed", "id", n.ID, "kind", n.Kind, "attempt", n.Attempts+1, "err", err, "next", next)
			}
			continue
		}
		if err := d.Store.MarkNotificationDelivered(ctx, n.ID, d.now().UTC()); err != nil {
			return delivered, err
		}
		delivered++
	}
	return delivered, nil
}

// Run calls RunOnce every interval until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.RunOnce(ctx); err != nil && d.Logger != nil && ctx.Err() == nil {
			d.Logger.Error("notification dispatcher", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dispatcher) backoff(attempts int) time.Duration {
	max := d.MaxBackoff
	if max <= 0 {
		max = time.Hour
	}
	b := 2 * time.Second
	for i := 1; i < attempts && b < max; i++ {
		b *= 2
	}
	if b > max {
		b = max
	}
	return b
}

func (d *Dispatcher) deliver(ctx context.Context, n *airlock.Notification) error {
	body, err := json.Marshal(Message{ID: n.ID, Kind: n.Kind, UserID: n.UserID, CreatedAt: n.CreatedAt, Data: n.Payload})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Airlock-Notification-Id", strconv.FormatInt(n.ID, 10))
	if d.Secret != "" {
		ts := strconv.FormatInt(d.now().Unix(), 10)
		req.Header.Set("X-Airlock-Timestamp", ts)
		req.Header.Set("X-Airlock-Signature", "sha256="+Sign(d.Secret, ts, body))
	}
	client := d.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notify: receiver answered %s", resp.Status)
	}
	return nil
}
