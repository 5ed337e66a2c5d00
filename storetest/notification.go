package storetest

import (
	"context"
	"testing"
	"time"

	"airlock"
)

func fullNotification(userID string, created time.Time) *airlock.Notification {
	return &airlock.Notification{
		ID:          0,
		Kind:        "passkey.added",
		UserID:      userID,
		Payload:     []byte(`{"credential":"YubiKey 5C"}`),
		Attempts:    2,
		NextAttempt: created.Add(time.Minute).In(elsewhere),
		LastError:   "receiver said 503",
		CreatedAt:   created,
		DeliveredAt: created.Add(2 * time.Minute),
	}
}

func pendingNotification(userID string, created, next time.Time) *airlock.Notification {
	return &airlock.Notification{Kind: "session.revoked", UserID: userID, Payload: []byte(`{}`), CreatedAt: created, NextAttempt: next}
}

func testNotifications(t *testing.T, open func(t *testing.T) airlock.Store) {
	ctx := context.Background()

	t.Run("round-trip", func(t *testing.T) {
		s := open(t)
		n := fullNotification("u-1", t0)
		checkAllSet(t, n, "ID")
		n.ID = 12345 // assigned by the store
		must(t, "EnqueueNotification", s.EnqueueNotification(ctx, n))
		if n.ID == 0 || n.ID == 12345 {
			t.Errorf("EnqueueNotification left ID = %d", n.ID)
		}
		list, err := s.ListNotificationsByUser(ctx, "u-1")
		must(t, "ListNotificationsByUser", err)
		checkEqual(t, "ListNotificationsByUser", []*airlock.Notification{n}, list)
	})

	t.Run("due", func(t *testing.T) {
		s := open(t)
		// Created out of order; NextAttempt decides whether each is due.
		n2 := pendingNotification("u-1", at(2*time.Second), t0)
		n1 := pendingNotification("u-2", at(1*time.Second), at(-time.Hour))
		n3 := pendingNotification("u-1", at(3*time.Second), time.Time{}) // zero: due at once
		future := pendingNotification("u-1", at(0), at(time.Microsecond))
		delivered := pendingNotification("u-1", at(-time.Second), at(-time.Hour))
		ids := map[int64]bool{}
		for _, n := range []*airlock.Notification{n2, n1, n3, future, delivered} {
			must(t, "EnqueueNotification", s.EnqueueNotification(ctx, n))
			if ids[n.ID] {
				t.Fatalf("EnqueueNotification reused ID %d", n.ID)
			}
			ids[n.ID] = true
		}
		must(t, "MarkNotificationDelivered", s.MarkNotificationDelivered(ctx, delivered.ID, at(-time.Minute)))

		due, err := s.DueNotifications(ctx, t0, 10)
		must(t, "DueNotifications", err)
		checkEqual(t, "due at t0", []*airlock.Notification{n1, n2, n3}, due)
		due, err = s.DueNotifications(ctx, t0, 2)
		must(t, "DueNotifications (limit 2)", err)
		checkEqual(t, "due at t0, limit 2", []*airlock.Notification{n1, n2}, due)
		due, err = s.DueNotifications(ctx, at(time.Microsecond), 10)
		must(t, "DueNotifications", err)
		checkEqual(t, "due a microsecond later", []*airlock.Notification{future, n1, n2, n3}, due)
	})

	t.Run("mark-failed", func(t *testing.T) {
		s := open(t)
		n := pendingNotification("u-1", t0, t0)
		other := pendingNotification("u-1", at(time.Second), t0)
		must(t, "EnqueueNotification", s.EnqueueNotification(ctx, n))
		must(t, "EnqueueNotification", s.EnqueueNotification(ctx, other))
		must(t, "MarkNotificationFailed", s.MarkNotificationFailed(ctx, n.ID, "connection refused", at(time.Minute)))
		must(t, "MarkNotificationFailed", s.MarkNotificationFailed(ctx, n.ID, "timeout", at(5*time.Minute)))

		due, err := s.DueNotifications(ctx, at(4*time.Minute), 10)
		must(t, "DueNotifications", err)
		checkEqual(t, "due before the retry", []*airlock.Notification{other}, due)
		due, err = s.DueNotifications(ctx, at(5*time.Minute), 10)
		must(t, "DueNotifications", err)
		want := *n
		want.Attempts, want.LastError, want.NextAttempt = 2, "timeout", at(5*time.Minute)
		checkEqual(t, "due at the retry", []*airlock.Notification{&want, other}, due)
	})

	t.Run("mark-delivered", func(t *testing.T) {
		s := open(t)
		n := pendingNotification("u-1", t0, t0)
		must(t, "EnqueueNotification", s.EnqueueNotification(ctx, n))
		must(t, "MarkNotificationDelivered", s.MarkNotificationDelivered(ctx, n.ID, at(time.Minute)))
		if err := s.MarkNotificationDelivered(ctx, n.ID, at(2*time.Minute)); err != nil {
			t.Errorf("second MarkNotificationDelivered: %v, want nil", err)
		}
		wantCode(t, "MarkNotificationFailed (delivered)", s.MarkNotificationFailed(ctx, n.ID, "late", at(time.Hour)), airlock.ECONFLICT)
		due, err := s.DueNotifications(ctx, at(24*time.Hour), 10)
		must(t, "DueNotifications", err)
		if len(due) != 0 {
			t.Errorf("delivered notification is due: %+v", due[0])
		}
		list, err := s.ListNotificationsByUser(ctx, "u-1")
		must(t, "ListNotificationsByUser", err)
		want := *n
		want.DeliveredAt = at(time.Minute)
		checkEqual(t, "delivered notification", []*airlock.Notification{&want}, list)
	})

	t.Run("fail-not-found", func(t *testing.T) {
		s := open(t)
		n := pendingNotification("u-1", t0, t0)
		must(t, "EnqueueNotification", s.EnqueueNotification(ctx, n))
		wantCode(t, "MarkNotificationDelivered", s.MarkNotificationDelivered(ctx, n.ID+1000, t0), airlock.ENOTFOUND)
		wantCode(t, "MarkNotificationFailed", s.MarkNotificationFailed(ctx, n.ID+1000, "x", t0), airlock.ENOTFOUND)
	})

	t.Run("list-by-user-newest-first", func(t *testing.T) {
		s := open(t)
		a := pendingNotification("u-1", at(time.Second), t0)
		b := pendingNotification("u-1", at(3*time.Second), t0)
		c := fullNotification("u-1", at(2*time.Second))
		other := pendingNotification("u-2", at(4*time.Second), t0)
		for _, n := range []*airlock.Notification{a, b, c, other} {
			must(t, "EnqueueNotification", s.EnqueueNotification(ctx, n))
		}
		list, err := s.ListNotificationsByUser(ctx, "u-1")
		must(t, "ListNotificationsByUser", err)
		checkEqual(t, "ListNotificationsByUser", []*airlock.Notification{b, c, a}, list)
		list, err = s.ListNotificationsByUser(ctx, "u-404")
		must(t, "ListNotificationsByUser (unknown user)", err)
		if len(list) != 0 {
			t.Errorf("unknown user has %d notifications", len(list))
		}
	})
}
