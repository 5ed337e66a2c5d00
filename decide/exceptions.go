package decide

import (
	"context"
	"regexp"
	"time"

	"airlock"
)

// MaxExceptionLifetime bounds how long an exception may live: exceptions
// are for a stated, temporary need, and renewing one is a new, audited
// decision.
const MaxExceptionLifetime = 90 * 24 * time.Hour

var effectPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ValidateException checks a new exception against the catalog at now:
// effect, owner, reason and a future expiry within MaxExceptionLifetime are
// required; an action or resource, when given, must be known (resources in
// the store are checked by the caller through the store).
func (s *Service) ValidateException(ctx context.Context, e *airlock.Exception, now time.Time) error {
	if !effectPattern.MatchString(e.Effect) {
		return airlock.Errorf(airlock.EINVALID, "effect is required: lower-case letters, digits and _ (the default policies understand skip_step_up and allow_unmanaged_device)")
	}
	if e.Owner == "" || len(e.Owner) > 100 {
		return airlock.Errorf(airlock.EINVALID, "owner is required (at most 100 characters): who answers for this exception")
	}
	if e.Reason == "" || len(e.Reason) > 500 {
		return airlock.Errorf(airlock.EINVALID, "reason is required (at most 500 characters): why the exception is needed, e.g. a ticket")
	}
	if !e.ExpiresAt.After(now) {
		return airlock.Errorf(airlock.EINVALID, "expires_at must be in the future")
	}
	if e.ExpiresAt.Sub(now) > MaxExceptionLifetime {
		return airlock.Errorf(airlock.EINVALID, "an exception may last at most %d days", int(MaxExceptionLifetime.Hours()/24))
	}
	if e.Action != "" {
		if _, ok := s.Catalog.Actions[e.Action]; !ok {
			return airlock.Errorf(airlock.EINVALID, "action %q is not in the catalog", clip(e.Action))
		}
	}
	if e.Resource != "" {
		if _, ok, err := s.resource(ctx, e.Resource); err != nil {
			return err
		} else if !ok {
			return airlock.Errorf(airlock.EINVALID, "resource %q is not known", clip(e.Resource))
		}
	}
	return nil
}

// SweepExceptions removes the exceptions that have expired, auditing each
// as "policy.exception_expired" before it is deleted (so an expiry is never
// lost; with several replicas sweeping at once one expiry may be recorded
// twice). Expired exceptions are ignored by decisions whether or not they
// were swept yet. It returns how many it removed.
func (s *Service) SweepExceptions(ctx context.Context) (int, error) {
	now := s.now()
	n := 0
	for {
		expired, err := s.Store.ListExpiredExceptions(ctx, now, 100)
		if err != nil {
			return n, err
		}
		for _, x := range expired {
			e := airlock.AuditEvent{Type: "policy.exception_expired", Actor: "system", Subject: x.ID, Outcome: airlock.OutcomeSuccess,
				UserID: x.UserID, Details: map[string]any{"exception": jsonValue(x)}}
			if err := s.Audit.Record(ctx, e); err != nil {
				return n, err
			}
			if err := s.Store.DeleteException(ctx, x.ID); err != nil && airlock.ErrorCode(err) != airlock.ENOTFOUND {
				return n, err
			}
			n++
		}
		if len(expired) < 100 {
			return n, nil
		}
	}
}

// Housekeeping does one round of the decision edge's cleanup: expired
// exceptions (audited), step-up transactions past both deadlines, and risk
// history no signal needs any more.
func (s *Service) Housekeeping(ctx context.Context) error {
	if _, err := s.SweepExceptions(ctx); err != nil {
		return err
	}
	if _, err := s.Store.DeleteExpiredStepUps(ctx, s.now()); err != nil {
		return err
	}
	return s.Signals.Prune(ctx)
}
