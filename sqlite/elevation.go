package sqlite

import (
	"context"
	"time"

	"airlock"
)

// The elevation store is being built (issue 5); until then every method
// fails closed.

func notYet() error {
	return airlock.Errorf(airlock.EUNAVAILABLE, "sqlite: elevation store not implemented yet")
}

// CreateAccessRequest implements airlock.ElevationStore.
func (s *Store) CreateAccessRequest(ctx context.Context, r *airlock.AccessRequest) error {
	return notYet()
}

// FindAccessRequestByID implements airlock.ElevationStore.
func (s *Store) FindAccessRequestByID(ctx context.Context, id string) (*airlock.AccessRequest, error) {
	return nil, notYet()
}

// ListAccessRequests implements airlock.ElevationStore.
func (s *Store) ListAccessRequests(ctx context.Context, f airlock.AccessRequestFilter) ([]*airlock.AccessRequest, error) {
	return nil, notYet()
}

// AddApproval implements airlock.ElevationStore.
func (s *Store) AddApproval(ctx context.Context, a *airlock.Approval) error { return notYet() }

// ListApprovals implements airlock.ElevationStore.
func (s *Store) ListApprovals(ctx context.Context, requestID string) ([]*airlock.Approval, error) {
	return nil, notYet()
}

// ResolveAccessRequest implements airlock.ElevationStore.
func (s *Store) ResolveAccessRequest(ctx context.Context, id string, status airlock.RequestStatus, by, note string, at time.Time, g *airlock.Grant) error {
	return notYet()
}

// ListExpiredAccessRequests implements airlock.ElevationStore.
func (s *Store) ListExpiredAccessRequests(ctx context.Context, now time.Time, limit int) ([]*airlock.AccessRequest, error) {
	return nil, notYet()
}

// FindGrantByID implements airlock.ElevationStore.
func (s *Store) FindGrantByID(ctx context.Context, id string) (*airlock.Grant, error) {
	return nil, notYet()
}

// ListGrants implements airlock.ElevationStore.
func (s *Store) ListGrants(ctx context.Context, f airlock.GrantFilter) ([]*airlock.Grant, error) {
	return nil, notYet()
}

// ListGrantsToEnd implements airlock.ElevationStore.
func (s *Store) ListGrantsToEnd(ctx context.Context, now time.Time, limit int) ([]*airlock.Grant, error) {
	return nil, notYet()
}

// EndGrant implements airlock.ElevationStore.
func (s *Store) EndGrant(ctx context.Context, id, reason, by string, at time.Time) error {
	return notYet()
}

// CreateSSHCertificate implements airlock.ElevationStore.
func (s *Store) CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error {
	return notYet()
}

// ListSSHCertificates implements airlock.ElevationStore.
func (s *Store) ListSSHCertificates(ctx context.Context, grantID string) ([]*airlock.SSHCertificate, error) {
	return nil, notYet()
}
