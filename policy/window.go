package policy

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"airlock"
)

// zones caches loaded time zones by IANA name: time.LoadLocation reads the
// zone database, which happens once per name per process.
var zones sync.Map // string → *time.Location, or error

func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if v, ok := zones.Load(name); ok {
		if err, bad := v.(error); bad {
			return nil, err
		}
		return v.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		zones.Store(name, err)
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// InWindow reports whether now falls inside w (airlock.AccessWindow's
// semantics): after NotBefore (inclusive) and before NotAfter (exclusive)
// when they are set; on one of Weekdays when any are listed; and, when
// EndHour is not 0, at an hour h with StartHour <= h < EndHour in the
// window's time zone. A StartHour at or above EndHour is an overnight window
// (h >= StartHour or h < EndHour), whose weekday is that of the local time
// being judged. When now is outside, the text says why. An unknown time
// zone is never inside.
func InWindow(w airlock.AccessWindow, now time.Time) (bool, string) {
	if !w.NotBefore.IsZero() && now.Before(w.NotBefore) {
		return false, "before " + w.NotBefore.UTC().Format(time.RFC3339)
	}
	if !w.NotAfter.IsZero() && !now.Before(w.NotAfter) {
		return false, "window ended " + w.NotAfter.UTC().Format(time.RFC3339)
	}
	loc, err := loadZone(w.TimeZone)
	if err != nil {
		return false, fmt.Sprintf("unknown time zone %q", w.TimeZone)
	}
	local := now.In(loc)
	if len(w.Weekdays) > 0 && !slices.Contains(w.Weekdays, local.Weekday()) {
		return false, fmt.Sprintf("%s is not an allowed weekday", local.Weekday())
	}
	if w.EndHour != 0 {
		h := local.Hour()
		var ok bool
		if w.StartHour < w.EndHour {
			ok = h >= w.StartHour && h < w.EndHour
		} else {
			ok = h >= w.StartHour || h < w.EndHour
		}
		if !ok {
			return false, fmt.Sprintf("%02d:%02d %s is outside %02d:00–%02d:00", h, local.Minute(), loc, w.StartHour, w.EndHour)
		}
	}
	return true, ""
}
