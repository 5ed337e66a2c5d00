// Package device decides whether an inventory device is compliant: trusted,
// its posture meeting the configured rules, and its posture fresh.
//
// It performs no I/O; callers hand it the device record and the time.
package device

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"airlock"
)

// DefaultMaxPostureAge is how old a posture report may be before the device
// stops being compliant.
const DefaultMaxPostureAge = 24 * time.Hour

// Rules are the posture requirements a trusted device must meet. The zero
// value requires nothing but trust and a posture younger than
// DefaultMaxPostureAge.
type Rules struct {
	RequireManaged        bool `yaml:"require_managed" json:"require_managed"`
	RequireDiskEncryption bool `yaml:"require_disk_encryption" json:"require_disk_encryption"`
	RequireEDR            bool `yaml:"require_edr" json:"require_edr"`
	RequireScreenLock     bool `yaml:"require_screen_lock" json:"require_screen_lock"`
	// MinPatchLevel, if set (YYYY-MM-DD), is the oldest acceptable patch level.
	MinPatchLevel string `yaml:"min_patch_level" json:"min_patch_level"`
	// MaxPostureAge bounds the age of the posture report; 0 means
	// DefaultMaxPostureAge.
	MaxPostureAge time.Duration `yaml:"max_posture_age" json:"max_posture_age"`
}

// DefaultRules are the rules of the embedded default configuration: a
// trusted, encrypted, screen-locked device reported within 24 hours.
func DefaultRules() Rules {
	return Rules{RequireDiskEncryption: true, RequireScreenLock: true, MaxPostureAge: DefaultMaxPostureAge}
}

var datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// Validate reports a configuration error in r.
func (r Rules) Validate() error {
	if r.MinPatchLevel != "" && !validDate(r.MinPatchLevel) {
		return fmt.Errorf("device: min_patch_level %q is not a YYYY-MM-DD date", r.MinPatchLevel)
	}
	if r.MaxPostureAge < 0 {
		return fmt.Errorf("device: max_posture_age must not be negative")
	}
	return nil
}

func (r Rules) maxAge() time.Duration {
	if r.MaxPostureAge <= 0 {
		return DefaultMaxPostureAge
	}
	return r.MaxPostureAge
}

func validDate(s string) bool {
	if !datePattern.MatchString(s) {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// Compliance is the verdict on one device at one time.
type Compliance struct {
	Compliant bool `json:"compliant"`
	// Reasons lists every unmet requirement, in a fixed order; empty when
	// compliant.
	Reasons []string `json:"reasons"`
	// PostureAge is how old the posture report was (0 if never reported).
	PostureAge time.Duration `json:"posture_age"`
	// Stale reports whether the posture was missing or older than allowed.
	Stale bool `json:"stale"`
}

// String joins the reasons for messages.
func (c Compliance) String() string {
	if c.Compliant {
		return "compliant"
	}
	return strings.Join(c.Reasons, "; ")
}

// Evaluate judges d against r at now. A nil device is not compliant.
func Evaluate(d *airlock.Device, r Rules, now time.Time) Compliance {
	c := Compliance{Reasons: []string{}}
	if d == nil {
		c.Reasons = append(c.Reasons, "device unknown")
		c.Stale = true
		return c
	}
	if d.Trust != airlock.TrustTrusted {
		c.Reasons = append(c.Reasons, fmt.Sprintf("device trust is %s, not trusted", d.Trust))
	}
	p := d.Posture
	if p.ReportedAt.IsZero() {
		c.Stale = true
		c.Reasons = append(c.Reasons, "no posture report")
	} else {
		c.PostureAge = now.Sub(p.ReportedAt)
		if c.PostureAge < 0 {
			c.PostureAge = 0
		}
		if now.Sub(p.ReportedAt) > r.maxAge() {
			c.Stale = true
			c.Reasons = append(c.Reasons, fmt.Sprintf("posture report is stale (%s old, limit %s)", c.PostureAge.Round(time.Minute), r.maxAge()))
		}
	}
	if r.RequireManaged && !p.Managed {
		c.Reasons = append(c.Reasons, "device is not managed")
	}
	if r.RequireDiskEncryption && !p.DiskEncrypted {
		c.Reasons = append(c.Reasons, "disk is not encrypted")
	}
	if r.RequireEDR && !p.EDRRunning {
		c.Reasons = append(c.Reasons, "EDR is not running")
	}
	if r.RequireScreenLock && !p.ScreenLock {
		c.Reasons = append(c.Reasons, "screen lock is off")
	}
	if r.MinPatchLevel != "" {
		// Dates in YYYY-MM-DD order compare correctly as strings.
		if !validDate(p.PatchLevel) {
			c.Reasons = append(c.Reasons, "patch level unknown")
		} else if p.PatchLevel < r.MinPatchLevel {
			c.Reasons = append(c.Reasons, fmt.Sprintf("patch level %s is older than %s", p.PatchLevel, r.MinPatchLevel))
		}
	}
	c.Compliant = len(c.Reasons) == 0
	return c
}

// ValidatePosture reports malformed posture input (a bad patch-level date,
// an over-long field, a report from the future) so that bad input changes
// nothing.
func ValidatePosture(p airlock.Posture, now time.Time) error {
	if p.PatchLevel != "" && !validDate(p.PatchLevel) {
		return airlock.Errorf(airlock.EINVALID, "patch_level %q is not a YYYY-MM-DD date", p.PatchLevel)
	}
	if len(p.OSVersion) > 100 || len(p.Source) > 100 {
		return airlock.Errorf(airlock.EINVALID, "os_version and source must be at most 100 characters")
	}
	if p.ReportedAt.After(now.Add(5 * time.Minute)) {
		return airlock.Errorf(airlock.EINVALID, "reported_at is in the future")
	}
	return nil
}
