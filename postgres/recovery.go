package postgres

import (
	"context"
	"time"

	"airlock"
)

// Recovery cases and break-glass events. CONTRACT STUBS: the store engineer
// replaces these with the real tables (a new migration) and storetest cases.

var errNotImplemented = airlock.Errorf(airlock.EUNAVAILABLE, "postgres: recovery/break-glass store not implemented yet")

// CreateRecoveryCase implements airlock.RecoveryStore.
func (s *Store) CreateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	return errNotImplemented
}

// FindRecoveryCaseByID implements airlock.RecoveryStore.
func (s *Store) FindRecoveryCaseByID(ctx context.Context, id string) (*airlock.RecoveryCase, error) {
	return nil, errNotImplemented
}

// FindRecoveryCaseBySecret implements airlock.RecoveryStore.
func (s *Store) FindRecoveryCaseBySecret(ctx context.Context, hash []byte) (*airlock.RecoveryCase, error) {
	return nil, errNotImplemented
}

// ListRecoveryCases implements airlock.RecoveryStore.
func (s *Store) ListRecoveryCases(ctx context.Context, f airlock.RecoveryCaseFilter) ([]*airlock.RecoveryCase, error) {
	return nil, errNotImplemented
}

// UpdateRecoveryCase implements airlock.RecoveryStore.
func (s *Store) UpdateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	return errNotImplemented
}

// AddRecoveryApproval implements airlock.RecoveryStore.
func (s *Store) AddRecoveryApproval(ctx context.Context, a *airlock.RecoveryApproval) error {
	return errNotImplemented
}

// ListRecoveryApprovals implements airlock.RecoveryStore.
func (s *Store) ListRecoveryApprovals(ctx context.Context, caseID string) ([]*airlock.RecoveryApproval, error) {
	return nil, errNotImplemented
}

// ListRecoveryCasesToExpire implements airlock.RecoveryStore.
func (s *Store) ListRecoveryCasesToExpire(ctx context.Context, now time.Time, limit int) ([]*airlock.RecoveryCase, error) {
	return nil, errNotImplemented
}

// CreateBreakGlassEvent implements airlock.BreakGlassStore.
func (s *Store) CreateBreakGlassEvent(ctx context.Context, e *airlock.BreakGlassEvent) error {
	return errNotImplemented
}

// FindBreakGlassEventByID implements airlock.BreakGlassStore.
func (s *Store) FindBreakGlassEventByID(ctx context.Context, id string) (*airlock.BreakGlassEvent, error) {
	return nil, errNotImplemented
}

// FindBreakGlassEventByToken implements airlock.BreakGlassStore.
func (s *Store) FindBreakGlassEventByToken(ctx context.Context, hash []byte) (*airlock.BreakGlassEvent, error) {
	return nil, errNotImplemented
}

// ListBreakGlassEvents implements airlock.BreakGlassStore.
func (s *Store) ListBreakGlassEvents(ctx context.Context, f airlock.BreakGlassFilter) ([]*airlock.BreakGlassEvent, error) {
	return nil, errNotImplemented
}

// EndBreakGlassEvent implements airlock.BreakGlassStore.
func (s *Store) EndBreakGlassEvent(ctx context.Context, id, reason string, at time.Time) error {
	return errNotImplemented
}

// ReviewBreakGlassEvent implements airlock.BreakGlassStore.
func (s *Store) ReviewBreakGlassEvent(ctx context.Context, id, reviewerID, notes string, at time.Time) error {
	return errNotImplemented
}
