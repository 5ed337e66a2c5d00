// Package risk gathers the risk signals that need history or outside data —
// network novelty, impossible travel, failed-ceremony velocity, recent
// recovery, clone signals, first use of a device — for the policy engine,
// which computes the rest from its Input and turns all of them into a score.
//
// It reads and writes the store's signal history (airlock.SignalStore); it
// decides nothing.
package risk

import (
	"context"
	"math"
	"net/netip"
	"time"

	"airlock"
	"airlock/policy"
)

// Defaults of Config.
const (
	DefaultNoveltyWindow  = 30 * 24 * time.Hour
	DefaultVelocityWindow = 15 * time.Minute
	DefaultRecoveryWindow = 7 * 24 * time.Hour
	DefaultCloneWindow    = 30 * 24 * time.Hour
	// DefaultRefreshAfter: a network seen more recently than this is not
	// written again on every request.
	DefaultRefreshAfter = time.Hour
)

// Config sets the windows the signals look back over. Zero fields take the
// defaults above.
type Config struct {
	// NoveltyWindow: a network not seen for the user within it is new
	// (default 30 days).
	NoveltyWindow time.Duration `yaml:"novelty_window" json:"novelty_window"`
	// VelocityWindow: failed ceremonies within it are counted (default
	// 15 minutes).
	VelocityWindow time.Duration `yaml:"velocity_window" json:"velocity_window"`
	// RecoveryWindow: a completed recovery within it is recent (default 7
	// days).
	RecoveryWindow time.Duration `yaml:"recovery_window" json:"recovery_window"`
	// CloneWindow: a clone signal within it is reported (default 30 days).
	CloneWindow time.Duration `yaml:"clone_window" json:"clone_window"`
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.NoveltyWindow, DefaultNoveltyWindow)
	def(&c.VelocityWindow, DefaultVelocityWindow)
	def(&c.RecoveryWindow, DefaultRecoveryWindow)
	def(&c.CloneWindow, DefaultCloneWindow)
	return c
}

// Locator places an address on the globe; a GeoIP database adapts to it.
// It reports false for an address it does not know.
type Locator interface {
	Locate(ip netip.Addr) (airlock.GeoPoint, bool)
}

// Travel judges a move from one place to another in dt: it returns the
// implied speed in km/h and whether that speed is impossible.
type Travel func(from, to airlock.GeoPoint, dt time.Duration) (kmh float64, impossible bool)

// Gatherer computes policy.Signals from the store's history. Locator and
// Travel are optional: without both, impossible travel is never reported.
type Gatherer struct {
	Store   airlock.SignalStore
	Locator Locator
	Travel  Travel
	Config  Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (g *Gatherer) now() time.Time {
	if g.Now != nil {
		return g.Now().UTC()
	}
	return time.Now().UTC()
}

// Network returns the network a request address belongs to for novelty: its
// IPv4 /24 or IPv6 /48 in prefix form ("192.0.2.0/24", "2001:db8:1::/48"),
// and false for text that is not an IP address. IPv4-mapped IPv6 addresses
// count as IPv4; zones are dropped.
func Network(ip string) (string, bool) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", false
	}
	addr = addr.Unmap().WithZone("")
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return "", false
	}
	return p.String(), true
}

// Subject names whose signals to gather.
type Subject struct {
	UserID   string
	DeviceID string
	// SessionCreated is when the session making the request began: the
	// device is used for the first time when no earlier session of the
	// user ran on it.
	SessionCreated time.Time
	// IP is the end user's address; empty or unparsable means unknown (no
	// network novelty, no travel).
	IP string
}

// Gather returns the signals for a request of sub at the current time. A
// store failure is returned as it is: the caller fails closed.
func (g *Gatherer) Gather(ctx context.Context, sub Subject) (policy.Signals, error) {
	cfg := g.Config.withDefaults()
	now := g.now()
	var sig policy.Signals

	if network, ok := Network(sub.IP); ok {
		seen, err := g.Store.FindNetwork(ctx, sub.UserID, network)
		switch {
		case airlock.ErrorCode(err) == airlock.ENOTFOUND:
			sig.NewNetwork = true
		case err != nil:
			return sig, err
		default:
			sig.NewNetwork = seen.LastSeen.Before(now.Add(-cfg.NoveltyWindow))
		}
		if g.Locator != nil && g.Travel != nil {
			if err := g.travel(ctx, sub, network, now, &sig); err != nil {
				return sig, err
			}
		}
	}

	n, err := g.Store.CountRiskEvents(ctx, sub.UserID, airlock.RiskCeremonyFailure, now.Add(-cfg.VelocityWindow))
	if err != nil {
		return sig, err
	}
	sig.FailedCeremonies = n
	if n, err = g.Store.CountRiskEvents(ctx, sub.UserID, airlock.RiskRecovery, now.Add(-cfg.RecoveryWindow)); err != nil {
		return sig, err
	}
	sig.RecentRecovery = n > 0
	if n, err = g.Store.CountRiskEvents(ctx, sub.UserID, airlock.RiskClone, now.Add(-cfg.CloneWindow)); err != nil {
		return sig, err
	}
	sig.CloneSignal = n > 0
	if sub.DeviceID != "" {
		earlier, err := g.Store.HasEarlierSession(ctx, sub.UserID, sub.DeviceID, sub.SessionCreated)
		if err != nil {
			return sig, err
		}
		sig.FirstDeviceUse = !earlier
	}
	return sig, nil
}

// travel compares where the request comes from with the user's most
// recently seen located network.
func (g *Gatherer) travel(ctx context.Context, sub Subject, network string, now time.Time, sig *policy.Signals) error {
	addr, err := netip.ParseAddr(sub.IP)
	if err != nil {
		return nil
	}
	here, ok := g.Locator.Locate(addr.Unmap())
	if !ok {
		return nil
	}
	last, err := g.Store.LatestNetwork(ctx, sub.UserID)
	if airlock.ErrorCode(err) == airlock.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	if last.Network == network || last.Location == nil {
		return nil
	}
	dt := now.Sub(last.LastSeen)
	if dt < 0 {
		dt = 0
	}
	kmh, impossible := g.Travel(*last.Location, here, dt)
	sig.ImpossibleTravel = impossible
	if kmh > 0 && !math.IsInf(kmh, 0) && !math.IsNaN(kmh) {
		sig.TravelKmh = kmh
	}
	return nil
}

// Seen records that the user made a request from ip that Airlock accepted
// (a login, a completed step-up, an allowed decision), with its location
// when a Locator knows it. A network seen within DefaultRefreshAfter is not
// written again. An unparsable ip records nothing.
func (g *Gatherer) Seen(ctx context.Context, userID, ip string) error {
	network, ok := Network(ip)
	if !ok {
		return nil
	}
	now := g.now()
	seen, err := g.Store.FindNetwork(ctx, userID, network)
	if err == nil && !seen.LastSeen.Before(now.Add(-DefaultRefreshAfter)) {
		return nil
	} else if err != nil && airlock.ErrorCode(err) != airlock.ENOTFOUND {
		return err
	}
	var loc *airlock.GeoPoint
	if g.Locator != nil {
		if addr, err := netip.ParseAddr(ip); err == nil {
			if p, ok := g.Locator.Locate(addr.Unmap()); ok {
				loc = &p
			}
		}
	}
	return g.Store.SeeNetwork(ctx, userID, network, loc, now)
}

// Prune deletes history no signal looks at any more: networks not seen
// within the novelty window (and no longer useful for travel) and risk
// events older than the longest window.
func (g *Gatherer) Prune(ctx context.Context) error {
	cfg := g.Config.withDefaults()
	now := g.now()
	if _, err := g.Store.DeleteNetworksBefore(ctx, now.Add(-cfg.NoveltyWindow)); err != nil {
		return err
	}
	longest := max(cfg.VelocityWindow, cfg.RecoveryWindow, cfg.CloneWindow)
	_, err := g.Store.DeleteRiskEventsBefore(ctx, now.Add(-longest))
	return err
}
