package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"airlock/pep"
)

// stdin is where the admin CLI reads a step-up proof; tests replace it.
var stdin io.Reader = os.Stdin

// policyCommandsWithoutSub are the admin commands of this file that take
// no sub-command word.
var policyCommandsWithoutSub = map[string]bool{"catalog": true, "policy-reload": true, "decide": true}

// confirm asks the person to complete a step-up in the browser and reads
// the proof from stdin.
func (c *client) confirm(ch *pep.ChallengeBody) (string, error) {
	fmt.Fprintf(c.errOut, "%s\n", ch.Error.Message)
	fmt.Fprintf(c.errOut, "Open %s in the browser signed in with this session, confirm with your passkey,\n", ch.StepUpURL)
	fmt.Fprintf(c.errOut, "then paste the proof shown there (valid until %s): ", ch.ExpiresAt.Format(time.RFC3339))
	if c.in == nil {
		return "", fmt.Errorf("admin: step-up required (%s) and no input to read the proof from", ch.StepUpURL)
	}
	line, err := bufio.NewReader(c.in).ReadString('\n')
	proof := strings.TrimSpace(line)
	if proof == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return "", fmt.Errorf("admin: no step-up proof given; the change was not made (confirm at %s and run the command again)", ch.StepUpURL)
	}
	return proof, nil
}

// policyCommand runs the exceptions, resources, catalog, policy-reload and
// decide commands; it reports false for a command it does not know.
func (c *client) policyCommand(cmd, sub string, sfs *flag.FlagSet, args []string, one func() (string, error), none func() error) (bool, error) {
	esc := url.PathEscape
	switch cmd + " " + sub {
	case "exceptions list":
		if err := none(); err != nil {
			return true, err
		}
		return true, c.do("GET", "/v1/admin/exceptions", nil)
	case "exceptions create":
		user := sfs.String("user", "", "user (name or id); empty: every user")
		action := sfs.String("action", "", "action; empty: every action")
		resource := sfs.String("resource", "", "resource; empty: every resource")
		effect := sfs.String("effect", "", "effect, e.g. skip_step_up or allow_unmanaged_device")
		owner := sfs.String("owner", "", "who answers for the exception")
		reason := sfs.String("reason", "", "why (e.g. a ticket)")
		ttl := sfs.Duration("ttl", 0, "lifetime, e.g. 4h")
		expires := sfs.String("expires", "", "expiry, RFC 3339")
		if err := none(); err != nil {
			return true, err
		}
		body := map[string]any{"user": *user, "action": *action, "resource": *resource, "effect": *effect, "owner": *owner, "reason": *reason}
		switch {
		case *ttl != 0 && *expires != "":
			return true, fmt.Errorf("admin exceptions create: --ttl and --expires conflict")
		case *ttl != 0:
			if *ttl < time.Second {
				return true, fmt.Errorf("admin exceptions create: --ttl must be at least 1s")
			}
			body["ttl_s"] = int64(*ttl / time.Second)
		case *expires != "":
			t, err := time.Parse(time.RFC3339, *expires)
			if err != nil {
				return true, fmt.Errorf("admin exceptions create: --expires: %v", err)
			}
			body["expires_at"] = t
		default:
			return true, fmt.Errorf("admin exceptions create: --ttl or --expires is required")
		}
		return true, c.do("POST", "/v1/admin/exceptions", body)
	case "exceptions delete":
		id, err := one()
		if err != nil {
			return true, err
		}
		return true, c.do("DELETE", "/v1/admin/exceptions/"+esc(id), nil)
	case "resources list":
		if err := none(); err != nil {
			return true, err
		}
		return true, c.do("GET", "/v1/admin/resources", nil)
	case "resources create", "resources update":
		name := sfs.String("name", "", "resource name (create)")
		tier := sfs.Int("tier", -1, "tier 0-2")
		labels := sfs.String("labels", "\x00", "labels k=v,k=v")
		var id string
		var err error
		if sub == "create" {
			err = none()
		} else {
			id, err = one()
		}
		if err != nil {
			return true, err
		}
		body := map[string]any{}
		if *tier >= 0 {
			body["tier"] = *tier
		}
		if *labels != "\x00" {
			m := map[string]string{}
			for _, kv := range splitList(*labels) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return true, fmt.Errorf("admin resources: --labels wants k=v pairs, got %q", kv)
				}
				m[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			body["labels"] = m
		}
		if sub == "create" {
			body["name"] = *name
			return true, c.do("POST", "/v1/admin/resources", body)
		}
		return true, c.do("PATCH", "/v1/admin/resources/"+esc(id), body)
	case "resources delete":
		name, err := one()
		if err != nil {
			return true, err
		}
		return true, c.do("DELETE", "/v1/admin/resources/"+esc(name), nil)
	case "catalog ":
		if err := none(); err != nil {
			return true, err
		}
		return true, c.do("GET", "/v1/admin/catalog", nil)
	case "policy-reload ":
		if err := none(); err != nil {
			return true, err
		}
		return true, c.do("POST", "/v1/admin/policy/reload", nil)
	case "decide ":
		action := sfs.String("action", "", "action")
		resource := sfs.String("resource", "", "resource")
		params := sfs.String("params", "", "parameters, a JSON object")
		clientName := sfs.String("client", "airlock CLI", "requesting application, shown on the step-up page")
		proof := sfs.String("stepup", "", "a step-up proof for this exact request")
		if err := none(); err != nil {
			return true, err
		}
		body := map[string]any{"action": *action, "resource": *resource, "context": map[string]any{"client": *clientName}}
		if *params != "" {
			if !json.Valid([]byte(*params)) {
				return true, fmt.Errorf("admin decide: --params is not valid JSON")
			}
			body["params"] = json.RawMessage(*params)
		}
		if *proof != "" {
			body["stepup"] = *proof
		}
		return true, c.do("POST", "/v1/decide", body)
	}
	return false, nil
}
