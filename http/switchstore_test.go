// switchStore's methods were written out from airlock.Store's method set
// (reflection, in method-set order). When the interface grows, the
// compile-time check below fails until the new methods are added here.

package http_test

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"airlock"
)

// switchStore wraps a real store. While stopped, every method fails with
// EUNAVAILABLE — as a database that went away — and touches nothing.
type switchStore struct {
	inner   airlock.Store
	stopped atomic.Bool
}

var _ airlock.Store = (*switchStore)(nil)

func (s *switchStore) down() error {
	return airlock.Errorf(airlock.EUNAVAILABLE, "store stopped (test)")
}

// Close closes the wrapped store.
func (s *switchStore) Close() error { return s.inner.Close() }

func (s *switchStore) AddApproval(a0 context.Context, a1 *airlock.Approval) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.AddApproval(a0, a1)
}

func (s *switchStore) AddAuditCheckpoint(a0 context.Context, a1 *airlock.AuditCheckpoint) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.AddAuditCheckpoint(a0, a1)
}

func (s *switchStore) AddRecoveryApproval(a0 context.Context, a1 *airlock.RecoveryApproval) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.AddRecoveryApproval(a0, a1)
}

func (s *switchStore) AppendAudit(a0 context.Context, a1 ...*airlock.AuditEvent) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.AppendAudit(a0, a1...)
}

func (s *switchStore) AuditCursor(a0 context.Context, a1 string) (int64, error) {
	if s.stopped.Load() {
		return *new(int64), s.down()
	}
	return s.inner.AuditCursor(a0, a1)
}

func (s *switchStore) AuditTreeSize(a0 context.Context) (int64, error) {
	if s.stopped.Load() {
		return *new(int64), s.down()
	}
	return s.inner.AuditTreeSize(a0)
}

func (s *switchStore) CompleteStepUp(a0 context.Context, a1 string, a2 []byte, a3 []byte, a4 time.Time, a5 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CompleteStepUp(a0, a1, a2, a3, a4, a5)
}

func (s *switchStore) ConsumeCeremony(a0 context.Context, a1 string) (*airlock.Ceremony, error) {
	if s.stopped.Load() {
		return *new(*airlock.Ceremony), s.down()
	}
	return s.inner.ConsumeCeremony(a0, a1)
}

func (s *switchStore) ConsumeStepUpProof(a0 context.Context, a1 []byte, a2 time.Time) (*airlock.StepUp, error) {
	if s.stopped.Load() {
		return *new(*airlock.StepUp), s.down()
	}
	return s.inner.ConsumeStepUpProof(a0, a1, a2)
}

func (s *switchStore) CountRiskEvents(a0 context.Context, a1 string, a2 string, a3 time.Time) (int, error) {
	if s.stopped.Load() {
		return *new(int), s.down()
	}
	return s.inner.CountRiskEvents(a0, a1, a2, a3)
}

func (s *switchStore) CreateAccessRequest(a0 context.Context, a1 *airlock.AccessRequest) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateAccessRequest(a0, a1)
}

func (s *switchStore) CreateBreakGlassEvent(a0 context.Context, a1 *airlock.BreakGlassEvent) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateBreakGlassEvent(a0, a1)
}

func (s *switchStore) CreateCeremony(a0 context.Context, a1 *airlock.Ceremony) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateCeremony(a0, a1)
}

func (s *switchStore) CreateCredential(a0 context.Context, a1 *airlock.Credential) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateCredential(a0, a1)
}

func (s *switchStore) CreateDevice(a0 context.Context, a1 *airlock.Device) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateDevice(a0, a1)
}

func (s *switchStore) CreateEnrolmentToken(a0 context.Context, a1 *airlock.EnrolmentToken) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateEnrolmentToken(a0, a1)
}

func (s *switchStore) CreateException(a0 context.Context, a1 *airlock.Exception) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateException(a0, a1)
}

func (s *switchStore) CreateRecoveryCase(a0 context.Context, a1 *airlock.RecoveryCase) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateRecoveryCase(a0, a1)
}

func (s *switchStore) CreateResource(a0 context.Context, a1 *airlock.Resource) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateResource(a0, a1)
}

func (s *switchStore) CreateSSHCertificate(a0 context.Context, a1 *airlock.SSHCertificate) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateSSHCertificate(a0, a1)
}

func (s *switchStore) CreateSession(a0 context.Context, a1 *airlock.Session) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateSession(a0, a1)
}

func (s *switchStore) CreateStepUp(a0 context.Context, a1 *airlock.StepUp) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateStepUp(a0, a1)
}

func (s *switchStore) CreateUser(a0 context.Context, a1 *airlock.User) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.CreateUser(a0, a1)
}

func (s *switchStore) DeleteException(a0 context.Context, a1 string) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.DeleteException(a0, a1)
}

func (s *switchStore) DeleteExpiredCeremonies(a0 context.Context, a1 time.Time) (int, error) {
	if s.stopped.Load() {
		return *new(int), s.down()
	}
	return s.inner.DeleteExpiredCeremonies(a0, a1)
}

func (s *switchStore) DeleteExpiredStepUps(a0 context.Context, a1 time.Time) (int, error) {
	if s.stopped.Load() {
		return *new(int), s.down()
	}
	return s.inner.DeleteExpiredStepUps(a0, a1)
}

func (s *switchStore) DeleteNetworksBefore(a0 context.Context, a1 time.Time) (int, error) {
	if s.stopped.Load() {
		return *new(int), s.down()
	}
	return s.inner.DeleteNetworksBefore(a0, a1)
}

func (s *switchStore) DeleteResource(a0 context.Context, a1 string) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.DeleteResource(a0, a1)
}

func (s *switchStore) DeleteRiskEventsBefore(a0 context.Context, a1 time.Time) (int, error) {
	if s.stopped.Load() {
		return *new(int), s.down()
	}
	return s.inner.DeleteRiskEventsBefore(a0, a1)
}

func (s *switchStore) DueNotifications(a0 context.Context, a1 time.Time, a2 int) ([]*airlock.Notification, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Notification), s.down()
	}
	return s.inner.DueNotifications(a0, a1, a2)
}

func (s *switchStore) EndBreakGlassEvent(a0 context.Context, a1 string, a2 string, a3 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.EndBreakGlassEvent(a0, a1, a2, a3)
}

func (s *switchStore) EndDeviceSessions(a0 context.Context, a1 string, a2 string, a3 time.Time) ([]string, error) {
	if s.stopped.Load() {
		return *new([]string), s.down()
	}
	return s.inner.EndDeviceSessions(a0, a1, a2, a3)
}

func (s *switchStore) EndGrant(a0 context.Context, a1 string, a2 string, a3 string, a4 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.EndGrant(a0, a1, a2, a3, a4)
}

func (s *switchStore) EndSession(a0 context.Context, a1 string, a2 string, a3 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.EndSession(a0, a1, a2, a3)
}

func (s *switchStore) EndUserSessions(a0 context.Context, a1 string, a2 string, a3 time.Time) ([]string, error) {
	if s.stopped.Load() {
		return *new([]string), s.down()
	}
	return s.inner.EndUserSessions(a0, a1, a2, a3)
}

func (s *switchStore) EnqueueNotification(a0 context.Context, a1 *airlock.Notification) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.EnqueueNotification(a0, a1)
}

func (s *switchStore) EnrolCredential(a0 context.Context, a1 string, a2 *airlock.Credential, a3 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.EnrolCredential(a0, a1, a2, a3)
}

func (s *switchStore) FindAccessRequestByID(a0 context.Context, a1 string) (*airlock.AccessRequest, error) {
	if s.stopped.Load() {
		return *new(*airlock.AccessRequest), s.down()
	}
	return s.inner.FindAccessRequestByID(a0, a1)
}

func (s *switchStore) FindBreakGlassEventByID(a0 context.Context, a1 string) (*airlock.BreakGlassEvent, error) {
	if s.stopped.Load() {
		return *new(*airlock.BreakGlassEvent), s.down()
	}
	return s.inner.FindBreakGlassEventByID(a0, a1)
}

func (s *switchStore) FindBreakGlassEventByToken(a0 context.Context, a1 []byte) (*airlock.BreakGlassEvent, error) {
	if s.stopped.Load() {
		return *new(*airlock.BreakGlassEvent), s.down()
	}
	return s.inner.FindBreakGlassEventByToken(a0, a1)
}

func (s *switchStore) FindCredentialByID(a0 context.Context, a1 []byte) (*airlock.Credential, error) {
	if s.stopped.Load() {
		return *new(*airlock.Credential), s.down()
	}
	return s.inner.FindCredentialByID(a0, a1)
}

func (s *switchStore) FindDeviceByID(a0 context.Context, a1 string) (*airlock.Device, error) {
	if s.stopped.Load() {
		return *new(*airlock.Device), s.down()
	}
	return s.inner.FindDeviceByID(a0, a1)
}

func (s *switchStore) FindEnrolmentTokenByHash(a0 context.Context, a1 []byte) (*airlock.EnrolmentToken, error) {
	if s.stopped.Load() {
		return *new(*airlock.EnrolmentToken), s.down()
	}
	return s.inner.FindEnrolmentTokenByHash(a0, a1)
}

func (s *switchStore) FindEnrolmentTokenByID(a0 context.Context, a1 string) (*airlock.EnrolmentToken, error) {
	if s.stopped.Load() {
		return *new(*airlock.EnrolmentToken), s.down()
	}
	return s.inner.FindEnrolmentTokenByID(a0, a1)
}

func (s *switchStore) FindExceptionByID(a0 context.Context, a1 string) (*airlock.Exception, error) {
	if s.stopped.Load() {
		return *new(*airlock.Exception), s.down()
	}
	return s.inner.FindExceptionByID(a0, a1)
}

func (s *switchStore) FindGrantByID(a0 context.Context, a1 string) (*airlock.Grant, error) {
	if s.stopped.Load() {
		return *new(*airlock.Grant), s.down()
	}
	return s.inner.FindGrantByID(a0, a1)
}

func (s *switchStore) FindNetwork(a0 context.Context, a1 string, a2 string) (*airlock.NetworkSighting, error) {
	if s.stopped.Load() {
		return *new(*airlock.NetworkSighting), s.down()
	}
	return s.inner.FindNetwork(a0, a1, a2)
}

func (s *switchStore) FindRecoveryCaseByID(a0 context.Context, a1 string) (*airlock.RecoveryCase, error) {
	if s.stopped.Load() {
		return *new(*airlock.RecoveryCase), s.down()
	}
	return s.inner.FindRecoveryCaseByID(a0, a1)
}

func (s *switchStore) FindRecoveryCaseBySecret(a0 context.Context, a1 []byte) (*airlock.RecoveryCase, error) {
	if s.stopped.Load() {
		return *new(*airlock.RecoveryCase), s.down()
	}
	return s.inner.FindRecoveryCaseBySecret(a0, a1)
}

func (s *switchStore) FindResourceByName(a0 context.Context, a1 string) (*airlock.Resource, error) {
	if s.stopped.Load() {
		return *new(*airlock.Resource), s.down()
	}
	return s.inner.FindResourceByName(a0, a1)
}

func (s *switchStore) FindSessionByID(a0 context.Context, a1 string) (*airlock.Session, error) {
	if s.stopped.Load() {
		return *new(*airlock.Session), s.down()
	}
	return s.inner.FindSessionByID(a0, a1)
}

func (s *switchStore) FindSessionByTokenHash(a0 context.Context, a1 []byte) (*airlock.Session, error) {
	if s.stopped.Load() {
		return *new(*airlock.Session), s.down()
	}
	return s.inner.FindSessionByTokenHash(a0, a1)
}

func (s *switchStore) FindStepUpByID(a0 context.Context, a1 string) (*airlock.StepUp, error) {
	if s.stopped.Load() {
		return *new(*airlock.StepUp), s.down()
	}
	return s.inner.FindStepUpByID(a0, a1)
}

func (s *switchStore) FindUserByHandle(a0 context.Context, a1 []byte) (*airlock.User, error) {
	if s.stopped.Load() {
		return *new(*airlock.User), s.down()
	}
	return s.inner.FindUserByHandle(a0, a1)
}

func (s *switchStore) FindUserByID(a0 context.Context, a1 string) (*airlock.User, error) {
	if s.stopped.Load() {
		return *new(*airlock.User), s.down()
	}
	return s.inner.FindUserByID(a0, a1)
}

func (s *switchStore) FindUserByName(a0 context.Context, a1 string) (*airlock.User, error) {
	if s.stopped.Load() {
		return *new(*airlock.User), s.down()
	}
	return s.inner.FindUserByName(a0, a1)
}

func (s *switchStore) HasActiveTier0Admin(a0 context.Context) (bool, error) {
	if s.stopped.Load() {
		return *new(bool), s.down()
	}
	return s.inner.HasActiveTier0Admin(a0)
}

func (s *switchStore) HasEarlierSession(a0 context.Context, a1 string, a2 string, a3 time.Time) (bool, error) {
	if s.stopped.Load() {
		return *new(bool), s.down()
	}
	return s.inner.HasEarlierSession(a0, a1, a2, a3)
}

func (s *switchStore) HitRateLimit(a0 context.Context, a1 string, a2 time.Duration, a3 time.Time) (int, error) {
	if s.stopped.Load() {
		return *new(int), s.down()
	}
	return s.inner.HitRateLimit(a0, a1, a2, a3)
}

func (s *switchStore) LatestAuditCheckpoint(a0 context.Context) (*airlock.AuditCheckpoint, error) {
	if s.stopped.Load() {
		return *new(*airlock.AuditCheckpoint), s.down()
	}
	return s.inner.LatestAuditCheckpoint(a0)
}

func (s *switchStore) LatestNetwork(a0 context.Context, a1 string) (*airlock.NetworkSighting, error) {
	if s.stopped.Load() {
		return *new(*airlock.NetworkSighting), s.down()
	}
	return s.inner.LatestNetwork(a0, a1)
}

func (s *switchStore) ListAccessRequests(a0 context.Context, a1 airlock.AccessRequestFilter) ([]*airlock.AccessRequest, error) {
	if s.stopped.Load() {
		return *new([]*airlock.AccessRequest), s.down()
	}
	return s.inner.ListAccessRequests(a0, a1)
}

func (s *switchStore) ListApprovals(a0 context.Context, a1 string) ([]*airlock.Approval, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Approval), s.down()
	}
	return s.inner.ListApprovals(a0, a1)
}

func (s *switchStore) ListAudit(a0 context.Context, a1 airlock.AuditFilter) ([]*airlock.AuditEvent, error) {
	if s.stopped.Load() {
		return *new([]*airlock.AuditEvent), s.down()
	}
	return s.inner.ListAudit(a0, a1)
}

func (s *switchStore) ListAuditCheckpoints(a0 context.Context, a1 int64, a2 int) ([]*airlock.AuditCheckpoint, error) {
	if s.stopped.Load() {
		return *new([]*airlock.AuditCheckpoint), s.down()
	}
	return s.inner.ListAuditCheckpoints(a0, a1, a2)
}

func (s *switchStore) ListBreakGlassEvents(a0 context.Context, a1 airlock.BreakGlassFilter) ([]*airlock.BreakGlassEvent, error) {
	if s.stopped.Load() {
		return *new([]*airlock.BreakGlassEvent), s.down()
	}
	return s.inner.ListBreakGlassEvents(a0, a1)
}

func (s *switchStore) ListCredentialsByUser(a0 context.Context, a1 string) ([]*airlock.Credential, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Credential), s.down()
	}
	return s.inner.ListCredentialsByUser(a0, a1)
}

func (s *switchStore) ListDevices(a0 context.Context) ([]*airlock.Device, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Device), s.down()
	}
	return s.inner.ListDevices(a0)
}

func (s *switchStore) ListEnrolmentTokens(a0 context.Context) ([]*airlock.EnrolmentToken, error) {
	if s.stopped.Load() {
		return *new([]*airlock.EnrolmentToken), s.down()
	}
	return s.inner.ListEnrolmentTokens(a0)
}

func (s *switchStore) ListExceptions(a0 context.Context) ([]*airlock.Exception, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Exception), s.down()
	}
	return s.inner.ListExceptions(a0)
}

func (s *switchStore) ListExpiredAccessRequests(a0 context.Context, a1 time.Time, a2 int) ([]*airlock.AccessRequest, error) {
	if s.stopped.Load() {
		return *new([]*airlock.AccessRequest), s.down()
	}
	return s.inner.ListExpiredAccessRequests(a0, a1, a2)
}

func (s *switchStore) ListExpiredExceptions(a0 context.Context, a1 time.Time, a2 int) ([]*airlock.Exception, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Exception), s.down()
	}
	return s.inner.ListExpiredExceptions(a0, a1, a2)
}

func (s *switchStore) ListExpiredSessions(a0 context.Context, a1 time.Time, a2 int) ([]*airlock.Session, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Session), s.down()
	}
	return s.inner.ListExpiredSessions(a0, a1, a2)
}

func (s *switchStore) ListGrants(a0 context.Context, a1 airlock.GrantFilter) ([]*airlock.Grant, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Grant), s.down()
	}
	return s.inner.ListGrants(a0, a1)
}

func (s *switchStore) ListGrantsToEnd(a0 context.Context, a1 time.Time, a2 int) ([]*airlock.Grant, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Grant), s.down()
	}
	return s.inner.ListGrantsToEnd(a0, a1, a2)
}

func (s *switchStore) ListLiveExceptions(a0 context.Context, a1 string, a2 time.Time) ([]*airlock.Exception, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Exception), s.down()
	}
	return s.inner.ListLiveExceptions(a0, a1, a2)
}

func (s *switchStore) ListNotificationsByUser(a0 context.Context, a1 string) ([]*airlock.Notification, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Notification), s.down()
	}
	return s.inner.ListNotificationsByUser(a0, a1)
}

func (s *switchStore) ListRecoveryApprovals(a0 context.Context, a1 string) ([]*airlock.RecoveryApproval, error) {
	if s.stopped.Load() {
		return *new([]*airlock.RecoveryApproval), s.down()
	}
	return s.inner.ListRecoveryApprovals(a0, a1)
}

func (s *switchStore) ListRecoveryCases(a0 context.Context, a1 airlock.RecoveryCaseFilter) ([]*airlock.RecoveryCase, error) {
	if s.stopped.Load() {
		return *new([]*airlock.RecoveryCase), s.down()
	}
	return s.inner.ListRecoveryCases(a0, a1)
}

func (s *switchStore) ListRecoveryCasesToExpire(a0 context.Context, a1 time.Time, a2 int) ([]*airlock.RecoveryCase, error) {
	if s.stopped.Load() {
		return *new([]*airlock.RecoveryCase), s.down()
	}
	return s.inner.ListRecoveryCasesToExpire(a0, a1, a2)
}

func (s *switchStore) ListResources(a0 context.Context) ([]*airlock.Resource, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Resource), s.down()
	}
	return s.inner.ListResources(a0)
}

func (s *switchStore) ListSSHCertificates(a0 context.Context, a1 string) ([]*airlock.SSHCertificate, error) {
	if s.stopped.Load() {
		return *new([]*airlock.SSHCertificate), s.down()
	}
	return s.inner.ListSSHCertificates(a0, a1)
}

func (s *switchStore) ListSessionsByUser(a0 context.Context, a1 string) ([]*airlock.Session, error) {
	if s.stopped.Load() {
		return *new([]*airlock.Session), s.down()
	}
	return s.inner.ListSessionsByUser(a0, a1)
}

func (s *switchStore) ListUsers(a0 context.Context) ([]*airlock.User, error) {
	if s.stopped.Load() {
		return *new([]*airlock.User), s.down()
	}
	return s.inner.ListUsers(a0)
}

func (s *switchStore) MarkNotificationDelivered(a0 context.Context, a1 int64, a2 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.MarkNotificationDelivered(a0, a1, a2)
}

func (s *switchStore) MarkNotificationFailed(a0 context.Context, a1 int64, a2 string, a3 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.MarkNotificationFailed(a0, a1, a2, a3)
}

func (s *switchStore) Ping(a0 context.Context) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.Ping(a0)
}

func (s *switchStore) ReadAuditEntries(a0 context.Context, a1 int64, a2 int) ([]*airlock.AuditEntry, error) {
	if s.stopped.Load() {
		return *new([]*airlock.AuditEntry), s.down()
	}
	return s.inner.ReadAuditEntries(a0, a1, a2)
}

func (s *switchStore) ReadAuditHashes(a0 context.Context, a1 []int64) ([]tlog.Hash, error) {
	if s.stopped.Load() {
		return *new([]tlog.Hash), s.down()
	}
	return s.inner.ReadAuditHashes(a0, a1)
}

func (s *switchStore) RecordRiskEvent(a0 context.Context, a1 string, a2 string, a3 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.RecordRiskEvent(a0, a1, a2, a3)
}

func (s *switchStore) ResolveAccessRequest(a0 context.Context, a1 string, a2 airlock.RequestStatus, a3 string, a4 string, a5 time.Time, a6 *airlock.Grant) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.ResolveAccessRequest(a0, a1, a2, a3, a4, a5, a6)
}

func (s *switchStore) ReviewBreakGlassEvent(a0 context.Context, a1 string, a2 string, a3 string, a4 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.ReviewBreakGlassEvent(a0, a1, a2, a3, a4)
}

func (s *switchStore) RevokeCredential(a0 context.Context, a1 []byte, a2 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.RevokeCredential(a0, a1, a2)
}

func (s *switchStore) SeeNetwork(a0 context.Context, a1 string, a2 string, a3 *airlock.GeoPoint, a4 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.SeeNetwork(a0, a1, a2, a3, a4)
}

func (s *switchStore) SetAuditCursor(a0 context.Context, a1 string, a2 int64) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.SetAuditCursor(a0, a1, a2)
}

func (s *switchStore) SetSessionUV(a0 context.Context, a1 string, a2 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.SetSessionUV(a0, a1, a2)
}

func (s *switchStore) TouchSession(a0 context.Context, a1 string, a2 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.TouchSession(a0, a1, a2)
}

func (s *switchStore) UpdateCredentialUse(a0 context.Context, a1 []byte, a2 uint32, a3 uint32, a4 bool, a5 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.UpdateCredentialUse(a0, a1, a2, a3, a4, a5)
}

func (s *switchStore) UpdateDevice(a0 context.Context, a1 *airlock.Device) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.UpdateDevice(a0, a1)
}

func (s *switchStore) UpdateRecoveryCase(a0 context.Context, a1 *airlock.RecoveryCase) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.UpdateRecoveryCase(a0, a1)
}

func (s *switchStore) UpdateResource(a0 context.Context, a1 *airlock.Resource) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.UpdateResource(a0, a1)
}

func (s *switchStore) UpdateUser(a0 context.Context, a1 *airlock.User) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.UpdateUser(a0, a1)
}

func (s *switchStore) UseEnrolmentToken(a0 context.Context, a1 string, a2 time.Time) error {
	if s.stopped.Load() {
		return s.down()
	}
	return s.inner.UseEnrolmentToken(a0, a1, a2)
}
