package pep

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"airlock"
)

// Client is a Decider that asks a remote Airlock through POST /v1/decide.
type Client struct {
	// BaseURL is Airlock's base URL, e.g. https://airlock.example.com.
	BaseURL string
	// HTTP is the client to use; nil means one with a 5-second timeout.
	HTTP *http.Client
}

var defaultHTTP = &http.Client{Timeout: 5 * time.Second}

// Decide posts req to /v1/decide. An error answer becomes an
// *airlock.Error with the answer's code and message; a transport failure an
// EUNAVAILABLE one.
func (c *Client) Decide(ctx context.Context, req Request) (*Decision, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, airlock.Wrap(airlock.EINVALID, "pep: request cannot be encoded", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/v1/decide", bytes.NewReader(body))
	if err != nil {
		return nil, airlock.Wrap(airlock.EINVALID, "pep: bad decision point URL", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	h := c.HTTP
	if h == nil {
		h = defaultHTTP
	}
	resp, err := h.Do(hr)
	if err != nil {
		return nil, airlock.Wrap(airlock.EUNAVAILABLE, "pep: decision point unreachable", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, airlock.Wrap(airlock.EUNAVAILABLE, "pep: reading the decision", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return nil, airlock.Errorf(e.Error.Code, "%s", e.Error.Message)
		}
		return nil, airlock.Errorf(airlock.EUNAVAILABLE, "pep: decision point answered HTTP %d", resp.StatusCode)
	}
	var d Decision
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, airlock.Wrap(airlock.EUNAVAILABLE, "pep: malformed decision", err)
	}
	switch d.Decision {
	case Allow, StepUp, ApprovalRequired, Deny:
	default:
		return nil, airlock.Errorf(airlock.EUNAVAILABLE, "pep: unknown decision %q", d.Decision)
	}
	return &d, nil
}

// ParseChallenge reads a step-up challenge from a 401 answer (a client
// that wants to offer the step-up); it reports false for any other answer.
func ParseChallenge(resp *http.Response, body []byte) (*ChallengeBody, bool) {
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), ErrInsufficientUserAuthentication) {
		return nil, false
	}
	var c ChallengeBody
	if err := json.Unmarshal(body, &c); err != nil || c.Transaction == "" {
		return nil, false
	}
	return &c, true
}

// String describes the challenge for a person.
func (c *ChallengeBody) String() string {
	return fmt.Sprintf("step-up required (transaction %s, max_age %d): confirm at %s", c.Transaction, c.MaxAge, c.StepUpURL)
}
