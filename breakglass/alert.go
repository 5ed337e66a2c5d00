package breakglass

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"airlock"
	"airlock/notify"
)

// Alert is the critical alert a break-glass use raises before access
// begins. Receivers get it as the JSON body of a POST, signed like
// notifications: header X-Airlock-Timestamp is the Unix time and
// X-Airlock-Signature is "sha256=" + notify.Sign(secret, timestamp, body);
// X-Airlock-Alert-Id repeats ID (deliveries may repeat: dedupe on it).
type Alert struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"` // "breakglass.used"
	Severity      string    `json:"severity"`
	EventID       string    `json:"event_id"`
	AccountID     string    `json:"account_id"`
	Account       string    `json:"account"`
	Justification string    `json:"justification"`
	Scopes        []string  `json:"scopes"`
	IP            string    `json:"ip,omitempty"`
	UserAgent     string    `json:"user_agent,omitempty"`
	Time          time.Time `json:"time"`
	EndsAt        time.Time `json:"ends_at"`
	// Offline says the store was unavailable: the use is recorded in the
	// local audit file until it is merged.
	Offline bool `json:"offline,omitempty"`
}

// alertRecord is one line of the alert spool: an alert raised, or its
// delivery to one target.
type alertRecord struct {
	Alert     *Alert `json:"alert,omitempty"`
	Delivered string `json:"delivered,omitempty"` // the alert id
	Target    string `json:"target,omitempty"`    // targetKey
}

// targetKey names a target in the spool without its URL (which often
// carries a secret).
func targetKey(t AlertTarget) string {
	h := sha256.Sum256([]byte(t.URL))
	return hex.EncodeToString(h[:8])
}

// raise spools a (fsynced), then delivers it to every target at once
// within AlertTimeout, and logs it at ERROR. It returns whether it was
// delivered to at least one target and whether it was spooled; the caller
// refuses access when neither.
func (s *Service) raise(ctx context.Context, a *Alert) (delivered, spooled bool) {
	if err := s.alertSpool.append(alertRecord{Alert: a}); err != nil {
		s.logger.Error("break-glass alert could not be spooled", "alert", a.ID, "err", err)
	} else {
		spooled = true
	}
	s.logger.Error("CRITICAL break-glass", "alert", a.ID, "event", a.EventID, "account", a.Account,
		"justification", a.Justification, "ip", a.IP, "scopes", a.Scopes, "ends_at", a.EndsAt, "offline", a.Offline)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AlertTimeout)
	defer cancel()
	ok := s.deliverAll(ctx, a, s.cfg.Alerts)
	return ok > 0, spooled
}

// deliverAll delivers a to targets concurrently, spooling each delivery,
// and returns how many got it.
func (s *Service) deliverAll(ctx context.Context, a *Alert, targets []AlertTarget) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.deliver(ctx, a, t)
			if err != nil {
				var ue *url.Error
				if errors.As(err, &ue) {
					err = ue.Err // never log the URL
				}
				s.logger.Warn("break-glass alert delivery failed", "alert", a.ID, "target", targetKey(t), "err", err)
				return
			}
			if err := s.alertSpool.append(alertRecord{Delivered: a.ID, Target: targetKey(t)}); err != nil {
				s.logger.Warn("break-glass alert delivery not recorded (it may be sent again)", "alert", a.ID, "err", err)
			}
			mu.Lock()
			n++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n
}

// deliver POSTs a to t; a 2xx answer counts as delivered.
func (s *Service) deliver(ctx context.Context, a *Alert, t AlertTarget) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Airlock-Alert-Id", a.ID)
	req.Header.Set("X-Airlock-Timestamp", ts)
	req.Header.Set("X-Airlock-Signature", "sha256="+notify.Sign(t.Secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// RetryAlerts delivers every spooled alert to each target that has not
// had it yet, and empties the spool once every alert reached every
// configured target. It returns how many deliveries it made.
func (s *Service) RetryAlerts(ctx context.Context) (int, error) {
	pending, err := s.pendingAlerts()
	if err != nil {
		return 0, err
	}
	made := 0
	for _, p := range pending {
		actx, cancel := context.WithTimeout(ctx, s.cfg.AlertTimeout)
		made += s.deliverAll(actx, p.alert, p.targets)
		cancel()
	}
	// Compact under the lock: an alert spooled meanwhile is still pending
	// and keeps the file.
	s.alertSpool.mu.Lock()
	defer s.alertSpool.mu.Unlock()
	left, err := s.pendingAlertsLocked()
	if err != nil {
		return made, err
	}
	if len(left) == 0 {
		if err := truncate(s.alertSpool.path); err != nil {
			return made, err
		}
	}
	return made, nil
}

type pendingAlert struct {
	alert   *Alert
	targets []AlertTarget
}

func (s *Service) pendingAlerts() ([]pendingAlert, error) {
	s.alertSpool.mu.Lock()
	defer s.alertSpool.mu.Unlock()
	return s.pendingAlertsLocked()
}

// pendingAlertsLocked lists the spooled alerts with the configured targets
// that have not had them.
func (s *Service) pendingAlertsLocked() ([]pendingAlert, error) {
	lines, err := s.alertSpool.readLocked()
	if err != nil {
		return nil, err
	}
	var order []*Alert
	done := map[string]map[string]bool{}
	for _, l := range lines {
		var r alertRecord
		if err := json.Unmarshal(l, &r); err != nil {
			return nil, airlock.Wrap(airlock.EINTERNAL, "alert spool", err)
		}
		switch {
		case r.Alert != nil:
			order = append(order, r.Alert)
			if done[r.Alert.ID] == nil {
				done[r.Alert.ID] = map[string]bool{}
			}
		case r.Delivered != "":
			if done[r.Delivered] == nil {
				done[r.Delivered] = map[string]bool{}
			}
			done[r.Delivered][r.Target] = true
		}
	}
	var out []pendingAlert
	for _, a := range order {
		var ts []AlertTarget
		for _, t := range s.cfg.Alerts {
			if !done[a.ID][targetKey(t)] {
				ts = append(ts, t)
			}
		}
		if len(ts) > 0 {
			out = append(out, pendingAlert{alert: a, targets: ts})
		}
	}
	return out, nil
}
