package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBuiltInRun(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--duration", "300ms", "--warmup", "0s", "--concurrency", "2", "--users", "2"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Requests  int            `json:"requests"`
		Errors    int            `json:"errors"`
		PerSecond float64        `json:"per_second"`
		P99       int64          `json:"p99_ns"`
		Decisions map[string]int `json:"decisions"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the JSON result: %v: %s", err, out.String())
	}
	if res.Requests == 0 || res.Errors != 0 || res.PerSecond <= 0 || res.P99 <= 0 || res.Decisions["allow"] != res.Requests {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(errb.String(), "decisions/s") && !strings.Contains(errb.String(), "/s with") {
		t.Errorf("no summary on stderr: %s", errb.String())
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--server", "http://127.0.0.1:1"},                    // no session
		{"--action", "config.read"},                           // no resource
		{"--action", "a", "--resource", "r", "--params", "{"}, // bad JSON
		{"extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
}
