package http

import "testing"

func TestRateKey(t *testing.T) {
	cases := map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"2001:db8:1:2:aaaa::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::9": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":          "::ffff:192.0.2.7",
		"not-an-ip":                 "not-an-ip",
	}
	for in, want := range cases {
		if got := rateKey(in); got != want {
			t.Errorf("rateKey(%q) = %q, want %q", in, got, want)
		}
	}
}
