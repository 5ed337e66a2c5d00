// roundRobin delegates every store method for TestConformanceReplicas;
// keep it in step with store.go and decide_store.go (the compile-time check
// below fails when an interface grows).

package postgres

import (
	"context"
	"sync/atomic"
	"time"

	"airlock"

	"golang.org/x/mod/sumdb/tlog"
)

var _ airlock.Store = (*roundRobin)(nil)

// roundRobin is an airlock.Store that sends each call to the next of
// several stores on one database, as a load balancer spreads requests over
// replicas.
type roundRobin struct {
	stores []*Store
	n      atomic.Uint64
}

func (rr *roundRobin) next() *Store { return rr.stores[(rr.n.Add(1)-1)%uint64(len(rr.stores))] }

// Close is a no-op: the stores are closed when their test ends.
func (rr *roundRobin) Close() error { return nil }

// Ping pings every store.
func (rr *roundRobin) Ping(ctx context.Context) error {
	for _, s := range rr.stores {
		if err := s.Ping(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (rr *roundRobin) CreateUser(ctx context.Context, u *airlock.User) error {
	return rr.next().CreateUser(ctx, u)
}

func (rr *roundRobin) FindUserByID(ctx context.Context, id string) (*airlock.User, error) {
	return rr.next().FindUserByID(ctx, id)
}

func (rr *roundRobin) FindUserByName(ctx context.Context, name string) (*airlock.User, error) {
	return rr.next().FindUserByName(ctx, name)
}

func (rr *roundRobin) FindUserByHandle(ctx context.Context, h []byte) (*airlock.User, error) {
	return rr.next().FindUserByHandle(ctx, h)
}

func (rr *roundRobin) ListUsers(ctx context.Context) ([]*airlock.User, error) {
	return rr.next().ListUsers(ctx)
}

func (rr *roundRobin) UpdateUser(ctx context.Context, u *airlock.User) error {
	return rr.next().UpdateUser(ctx, u)
}

func (rr *roundRobin) HasActiveTier0Admin(ctx context.Context) (bool, error) {
	return rr.next().HasActiveTier0Admin(ctx)
}

func (rr *roundRobin) CreateDevice(ctx context.Context, d *airlock.Device) error {
	return rr.next().CreateDevice(ctx, d)
}

func (rr *roundRobin) FindDeviceByID(ctx context.Context, id string) (*airlock.Device, error) {
	return rr.next().FindDeviceByID(ctx, id)
}

func (rr *roundRobin) ListDevices(ctx context.Context) ([]*airlock.Device, error) {
	return rr.next().ListDevices(ctx)
}

func (rr *roundRobin) UpdateDevice(ctx context.Context, d *airlock.Device) error {
	return rr.next().UpdateDevice(ctx, d)
}

func (rr *roundRobin) CreateCredential(ctx context.Context, c *airlock.Credential) error {
	return rr.next().CreateCredential(ctx, c)
}

func (rr *roundRobin) FindCredentialByID(ctx context.Context, id []byte) (*airlock.Credential, error) {
	return rr.next().FindCredentialByID(ctx, id)
}

func (rr *roundRobin) ListCredentialsByUser(ctx context.Context, userID string) ([]*airlock.Credential, error) {
	return rr.next().ListCredentialsByUser(ctx, userID)
}

func (rr *roundRobin) EnrolCredential(ctx context.Context, tokenID string, c *airlock.Credential, at time.Time) error {
	return rr.next().EnrolCredential(ctx, tokenID, c, at)
}

func (rr *roundRobin) UpdateCredentialUse(ctx context.Context, id []byte, oldCount, newCount uint32, backupState bool, at time.Time) error {
	return rr.next().UpdateCredentialUse(ctx, id, oldCount, newCount, backupState, at)
}

func (rr *roundRobin) RevokeCredential(ctx context.Context, id []byte, at time.Time) error {
	return rr.next().RevokeCredential(ctx, id, at)
}

func (rr *roundRobin) CreateSession(ctx context.Context, s *airlock.Session) error {
	return rr.next().CreateSession(ctx, s)
}

func (rr *roundRobin) FindSessionByID(ctx context.Context, id string) (*airlock.Session, error) {
	return rr.next().FindSessionByID(ctx, id)
}

func (rr *roundRobin) FindSessionByTokenHash(ctx context.Context, hash []byte) (*airlock.Session, error) {
	return rr.next().FindSessionByTokenHash(ctx, hash)
}

func (rr *roundRobin) TouchSession(ctx context.Context, id string, at time.Time) error {
	return rr.next().TouchSession(ctx, id, at)
}

func (rr *roundRobin) SetSessionUV(ctx context.Context, id string, at time.Time) error {
	return rr.next().SetSessionUV(ctx, id, at)
}

func (rr *roundRobin) EndSession(ctx context.Context, id, reason string, at time.Time) error {
	return rr.next().EndSession(ctx, id, reason, at)
}

func (rr *roundRobin) EndUserSessions(ctx context.Context, userID, reason string, at time.Time) ([]string, error) {
	return rr.next().EndUserSessions(ctx, userID, reason, at)
}

func (rr *roundRobin) EndDeviceSessions(ctx context.Context, deviceID, reason string, at time.Time) ([]string, error) {
	return rr.next().EndDeviceSessions(ctx, deviceID, reason, at)
}

func (rr *roundRobin) ListExpiredSessions(ctx context.Context, now time.Time, limit int) ([]*airlock.Session, error) {
	return rr.next().ListExpiredSessions(ctx, now, limit)
}

func (rr *roundRobin) ListSessionsByUser(ctx context.Context, userID string) ([]*airlock.Session, error) {
	return rr.next().ListSessionsByUser(ctx, userID)
}

func (rr *roundRobin) CreateEnrolmentToken(ctx context.Context, t *airlock.EnrolmentToken) error {
	return rr.next().CreateEnrolmentToken(ctx, t)
}

func (rr *roundRobin) FindEnrolmentTokenByHash(ctx context.Context, hash []byte) (*airlock.EnrolmentToken, error) {
	return rr.next().FindEnrolmentTokenByHash(ctx, hash)
}

func (rr *roundRobin) FindEnrolmentTokenByID(ctx context.Context, id string) (*airlock.EnrolmentToken, error) {
	return rr.next().FindEnrolmentTokenByID(ctx, id)
}

func (rr *roundRobin) UseEnrolmentToken(ctx context.Context, id string, at time.Time) error {
	return rr.next().UseEnrolmentToken(ctx, id, at)
}

func (rr *roundRobin) ListEnrolmentTokens(ctx context.Context) ([]*airlock.EnrolmentToken, error) {
	return rr.next().ListEnrolmentTokens(ctx)
}

func (rr *roundRobin) CreateCeremony(ctx context.Context, c *airlock.Ceremony) error {
	return rr.next().CreateCeremony(ctx, c)
}

func (rr *roundRobin) ConsumeCeremony(ctx context.Context, id string) (*airlock.Ceremony, error) {
	return rr.next().ConsumeCeremony(ctx, id)
}

func (rr *roundRobin) DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int, error) {
	return rr.next().DeleteExpiredCeremonies(ctx, now)
}

func (rr *roundRobin) AppendAudit(ctx context.Context, events ...*airlock.AuditEvent) error {
	return rr.next().AppendAudit(ctx, events...)
}

func (rr *roundRobin) AuditTreeSize(ctx context.Context) (int64, error) {
	return rr.next().AuditTreeSize(ctx)
}

func (rr *roundRobin) ReadAuditHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return rr.next().ReadAuditHashes(ctx, indexes)
}

func (rr *roundRobin) ReadAuditEntries(ctx context.Context, afterSeq int64, limit int) ([]*airlock.AuditEntry, error) {
	return rr.next().ReadAuditEntries(ctx, afterSeq, limit)
}

func (rr *roundRobin) ListAudit(ctx context.Context, f airlock.AuditFilter) ([]*airlock.AuditEvent, error) {
	return rr.next().ListAudit(ctx, f)
}

func (rr *roundRobin) AddAuditCheckpoint(ctx context.Context, c *airlock.AuditCheckpoint) error {
	return rr.next().AddAuditCheckpoint(ctx, c)
}

func (rr *roundRobin) LatestAuditCheckpoint(ctx context.Context) (*airlock.AuditCheckpoint, error) {
	return rr.next().LatestAuditCheckpoint(ctx)
}

func (rr *roundRobin) ListAuditCheckpoints(ctx context.Context, afterSize int64, limit int) ([]*airlock.AuditCheckpoint, error) {
	return rr.next().ListAuditCheckpoints(ctx, afterSize, limit)
}

func (rr *roundRobin) AuditCursor(ctx context.Context, name string) (int64, error) {
	return rr.next().AuditCursor(ctx, name)
}

func (rr *roundRobin) SetAuditCursor(ctx context.Context, name string, seq int64) error {
	return rr.next().SetAuditCursor(ctx, name, seq)
}

func (rr *roundRobin) EnqueueNotification(ctx context.Context, n *airlock.Notification) error {
	return rr.next().EnqueueNotification(ctx, n)
}

func (rr *roundRobin) DueNotifications(ctx context.Context, now time.Time, limit int) ([]*airlock.Notification, error) {
	return rr.next().DueNotifications(ctx, now, limit)
}

func (rr *roundRobin) MarkNotificationDelivered(ctx context.Context, id int64, at time.Time) error {
	return rr.next().MarkNotificationDelivered(ctx, id, at)
}

func (rr *roundRobin) MarkNotificationFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	return rr.next().MarkNotificationFailed(ctx, id, errText, next)
}

func (rr *roundRobin) ListNotificationsByUser(ctx context.Context, userID string) ([]*airlock.Notification, error) {
	return rr.next().ListNotificationsByUser(ctx, userID)
}

func (rr *roundRobin) HitRateLimit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	return rr.next().HitRateLimit(ctx, key, window, now)
}

func (rr *roundRobin) CreateStepUp(ctx context.Context, t *airlock.StepUp) error {
	return rr.next().CreateStepUp(ctx, t)
}

func (rr *roundRobin) FindStepUpByID(ctx context.Context, id string) (*airlock.StepUp, error) {
	return rr.next().FindStepUpByID(ctx, id)
}

func (rr *roundRobin) CompleteStepUp(ctx context.Context, id string, proofHash, credentialID []byte, at, proofExpiresAt time.Time) error {
	return rr.next().CompleteStepUp(ctx, id, proofHash, credentialID, at, proofExpiresAt)
}

func (rr *roundRobin) ConsumeStepUpProof(ctx context.Context, proofHash []byte, at time.Time) (*airlock.StepUp, error) {
	return rr.next().ConsumeStepUpProof(ctx, proofHash, at)
}

func (rr *roundRobin) DeleteExpiredStepUps(ctx context.Context, now time.Time) (int, error) {
	return rr.next().DeleteExpiredStepUps(ctx, now)
}

func (rr *roundRobin) CreateException(ctx context.Context, e *airlock.Exception) error {
	return rr.next().CreateException(ctx, e)
}

func (rr *roundRobin) FindExceptionByID(ctx context.Context, id string) (*airlock.Exception, error) {
	return rr.next().FindExceptionByID(ctx, id)
}

func (rr *roundRobin) ListExceptions(ctx context.Context) ([]*airlock.Exception, error) {
	return rr.next().ListExceptions(ctx)
}

func (rr *roundRobin) ListLiveExceptions(ctx context.Context, userID string, now time.Time) ([]*airlock.Exception, error) {
	return rr.next().ListLiveExceptions(ctx, userID, now)
}

func (rr *roundRobin) ListExpiredExceptions(ctx context.Context, now time.Time, limit int) ([]*airlock.Exception, error) {
	return rr.next().ListExpiredExceptions(ctx, now, limit)
}

func (rr *roundRobin) DeleteException(ctx context.Context, id string) error {
	return rr.next().DeleteException(ctx, id)
}

func (rr *roundRobin) CreateResource(ctx context.Context, r *airlock.Resource) error {
	return rr.next().CreateResource(ctx, r)
}

func (rr *roundRobin) FindResourceByName(ctx context.Context, name string) (*airlock.Resource, error) {
	return rr.next().FindResourceByName(ctx, name)
}

func (rr *roundRobin) ListResources(ctx context.Context) ([]*airlock.Resource, error) {
	return rr.next().ListResources(ctx)
}

func (rr *roundRobin) UpdateResource(ctx context.Context, r *airlock.Resource) error {
	return rr.next().UpdateResource(ctx, r)
}

func (rr *roundRobin) DeleteResource(ctx context.Context, name string) error {
	return rr.next().DeleteResource(ctx, name)
}

func (rr *roundRobin) SeeNetwork(ctx context.Context, userID, network string, loc *airlock.GeoPoint, at time.Time) error {
	return rr.next().SeeNetwork(ctx, userID, network, loc, at)
}

func (rr *roundRobin) FindNetwork(ctx context.Context, userID, network string) (*airlock.NetworkSighting, error) {
	return rr.next().FindNetwork(ctx, userID, network)
}

func (rr *roundRobin) LatestNetwork(ctx context.Context, userID string) (*airlock.NetworkSighting, error) {
	return rr.next().LatestNetwork(ctx, userID)
}

func (rr *roundRobin) DeleteNetworksBefore(ctx context.Context, before time.Time) (int, error) {
	return rr.next().DeleteNetworksBefore(ctx, before)
}

func (rr *roundRobin) RecordRiskEvent(ctx context.Context, userID, kind string, at time.Time) error {
	return rr.next().RecordRiskEvent(ctx, userID, kind, at)
}

func (rr *roundRobin) CountRiskEvents(ctx context.Context, userID, kind string, since time.Time) (int, error) {
	return rr.next().CountRiskEvents(ctx, userID, kind, since)
}

func (rr *roundRobin) DeleteRiskEventsBefore(ctx context.Context, before time.Time) (int, error) {
	return rr.next().DeleteRiskEventsBefore(ctx, before)
}

func (rr *roundRobin) HasEarlierSession(ctx context.Context, userID, deviceID string, before time.Time) (bool, error) {
	return rr.next().HasEarlierSession(ctx, userID, deviceID, before)
}

func (rr *roundRobin) CreateAccessRequest(ctx context.Context, r *airlock.AccessRequest) error {
	return rr.next().CreateAccessRequest(ctx, r)
}

func (rr *roundRobin) FindAccessRequestByID(ctx context.Context, id string) (*airlock.AccessRequest, error) {
	return rr.next().FindAccessRequestByID(ctx, id)
}

func (rr *roundRobin) ListAccessRequests(ctx context.Context, f airlock.AccessRequestFilter) ([]*airlock.AccessRequest, error) {
	return rr.next().ListAccessRequests(ctx, f)
}

func (rr *roundRobin) AddApproval(ctx context.Context, a *airlock.Approval) error {
	return rr.next().AddApproval(ctx, a)
}

func (rr *roundRobin) ListApprovals(ctx context.Context, requestID string) ([]*airlock.Approval, error) {
	return rr.next().ListApprovals(ctx, requestID)
}

func (rr *roundRobin) ResolveAccessRequest(ctx context.Context, id string, status airlock.RequestStatus, by, note string, at time.Time, g *airlock.Grant) error {
	return rr.next().ResolveAccessRequest(ctx, id, status, by, note, at, g)
}

func (rr *roundRobin) ListExpiredAccessRequests(ctx context.Context, now time.Time, limit int) ([]*airlock.AccessRequest, error) {
	return rr.next().ListExpiredAccessRequests(ctx, now, limit)
}

func (rr *roundRobin) FindGrantByID(ctx context.Context, id string) (*airlock.Grant, error) {
	return rr.next().FindGrantByID(ctx, id)
}

func (rr *roundRobin) ListGrants(ctx context.Context, f airlock.GrantFilter) ([]*airlock.Grant, error) {
	return rr.next().ListGrants(ctx, f)
}

func (rr *roundRobin) ListGrantsToEnd(ctx context.Context, now time.Time, limit int) ([]*airlock.Grant, error) {
	return rr.next().ListGrantsToEnd(ctx, now, limit)
}

func (rr *roundRobin) EndGrant(ctx context.Context, id, reason, by string, at time.Time) error {
	return rr.next().EndGrant(ctx, id, reason, by, at)
}

func (rr *roundRobin) CreateSSHCertificate(ctx context.Context, c *airlock.SSHCertificate) error {
	return rr.next().CreateSSHCertificate(ctx, c)
}

func (rr *roundRobin) ListSSHCertificates(ctx context.Context, grantID string) ([]*airlock.SSHCertificate, error) {
	return rr.next().ListSSHCertificates(ctx, grantID)
}

func (rr *roundRobin) CreateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	return rr.next().CreateRecoveryCase(ctx, c)
}

func (rr *roundRobin) FindRecoveryCaseByID(ctx context.Context, id string) (*airlock.RecoveryCase, error) {
	return rr.next().FindRecoveryCaseByID(ctx, id)
}

func (rr *roundRobin) FindRecoveryCaseBySecret(ctx context.Context, hash []byte) (*airlock.RecoveryCase, error) {
	return rr.next().FindRecoveryCaseBySecret(ctx, hash)
}

func (rr *roundRobin) ListRecoveryCases(ctx context.Context, f airlock.RecoveryCaseFilter) ([]*airlock.RecoveryCase, error) {
	return rr.next().ListRecoveryCases(ctx, f)
}

func (rr *roundRobin) UpdateRecoveryCase(ctx context.Context, c *airlock.RecoveryCase) error {
	return rr.next().UpdateRecoveryCase(ctx, c)
}

func (rr *roundRobin) AddRecoveryApproval(ctx context.Context, a *airlock.RecoveryApproval) error {
	return rr.next().AddRecoveryApproval(ctx, a)
}

func (rr *roundRobin) ListRecoveryApprovals(ctx context.Context, caseID string) ([]*airlock.RecoveryApproval, error) {
	return rr.next().ListRecoveryApprovals(ctx, caseID)
}

func (rr *roundRobin) ListRecoveryCasesToExpire(ctx context.Context, now time.Time, limit int) ([]*airlock.RecoveryCase, error) {
	return rr.next().ListRecoveryCasesToExpire(ctx, now, limit)
}

func (rr *roundRobin) CreateBreakGlassEvent(ctx context.Context, e *airlock.BreakGlassEvent) error {
	return rr.next().CreateBreakGlassEvent(ctx, e)
}

func (rr *roundRobin) FindBreakGlassEventByID(ctx context.Context, id string) (*airlock.BreakGlassEvent, error) {
	return rr.next().FindBreakGlassEventByID(ctx, id)
}

func (rr *roundRobin) FindBreakGlassEventByToken(ctx context.Context, hash []byte) (*airlock.BreakGlassEvent, error) {
	return rr.next().FindBreakGlassEventByToken(ctx, hash)
}

func (rr *roundRobin) ListBreakGlassEvents(ctx context.Context, f airlock.BreakGlassFilter) ([]*airlock.BreakGlassEvent, error) {
	return rr.next().ListBreakGlassEvents(ctx, f)
}

func (rr *roundRobin) EndBreakGlassEvent(ctx context.Context, id, reason string, at time.Time) error {
	return rr.next().EndBreakGlassEvent(ctx, id, reason, at)
}

func (rr *roundRobin) ReviewBreakGlassEvent(ctx context.Context, id, reviewerID, notes string, at time.Time) error {
	return rr.next().ReviewBreakGlassEvent(ctx, id, reviewerID, notes, at)
}
