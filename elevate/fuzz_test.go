package elevate

import (
	"bytes"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzCheckAsk: whatever a requester sends, an accepted ask has a valid
// scope, a whole-second positive duration, and a reason and ticket of valid
// UTF-8 within their limits with no control or direction characters; and
// moving text between reason and ticket always changes the digest.
func FuzzCheckAsk(f *testing.F) {
	f.Add("dba@db-prod", int64(1800e9), "fix the lag", "OPS-1")
	f.Add("tier:0", int64(1), "x\ny", "")
	f.Add("a@b", int64(-5), "\u202eevil", "\x00")
	f.Fuzz(func(t *testing.T, scope string, d int64, reason, ticket string) {
		s, dur, err := checkAsk(Ask{Scope: scope, Duration: time.Duration(d), Reason: reason, Ticket: ticket})
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if s.String() != scope || dur <= 0 || dur%time.Second != 0 {
			t.Fatalf("accepted scope %q (%q) duration %s", scope, s, dur)
		}
		for _, text := range []string{reason, ticket} {
			if !utf8.ValidString(text) {
				t.Fatalf("accepted invalid UTF-8 %q", text)
			}
			for _, c := range text {
				if unicode.IsControl(c) || isBidiControl(c) {
					t.Fatalf("accepted %U in %q", c, text)
				}
			}
		}
		if utf8.RuneCountInString(reason) > MaxReasonLen || utf8.RuneCountInString(ticket) > MaxTicketLen {
			t.Fatal("accepted over-long text")
		}
		r := sampleRequest()
		r.Reason, r.Ticket = reason, ticket
		moved := sampleRequest()
		moved.Reason, moved.Ticket = reason+ticket, ""
		if ticket != "" && bytes.Equal(RequestDigest(r), RequestDigest(moved)) {
			t.Fatalf("digest of (%q, %q) equals (%q, \"\")", reason, ticket, reason+ticket)
		}
	})
}
