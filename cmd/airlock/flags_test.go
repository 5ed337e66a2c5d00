package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInterspersed(t *testing.T) {
	newFS := func() (*flag.FlagSet, *time.Duration, *string, *bool) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.Duration("for", time.Minute, ""), fs.String("reason", "", ""), fs.Bool("no-wait", false, "")
	}
	for _, tt := range []struct {
		name   string
		args   []string
		pos    []string
		dur    time.Duration
		reason string
		wait   bool
	}{
		{"ok-flags-first", []string{"--for", "30m", "--reason", "fix it", "dba@db-prod"}, []string{"dba@db-prod"}, 30 * time.Minute, "fix it", false},
		{"ok-operand-first", []string{"dba@db-prod", "--for", "30m", "--reason", "fix it"}, []string{"dba@db-prod"}, 30 * time.Minute, "fix it", false},
		{"ok-mixed-bool", []string{"--no-wait", "dba@db-prod", "-reason=x"}, []string{"dba@db-prod"}, time.Minute, "x", true},
		{"ok-bool-does-not-eat-operand", []string{"--no-wait", "tier:1"}, []string{"tier:1"}, time.Minute, "", true},
		{"ok-value-that-looks-like-a-flag", []string{"--reason", "-x-", "s@r"}, []string{"s@r"}, time.Minute, "-x-", false},
		{"ok-double-dash", []string{"--reason", "r", "--", "--for", "-"}, []string{"--for", "-"}, time.Minute, "r", false},
		{"ok-stdin-dash", []string{"-", "--reason", "r"}, []string{"-"}, time.Minute, "r", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs, dur, reason, noWait := newFS()
			if err := fs.Parse(interspersed(fs, tt.args)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fs.Args(), tt.pos) || *dur != tt.dur || *reason != tt.reason || *noWait != tt.wait {
				t.Fatalf("args %q for %v reason %q no-wait %v", fs.Args(), *dur, *reason, *noWait)
			}
		})
	}
	fs, _, _, _ := newFS()
	if err := fs.Parse(interspersed(fs, []string{"s@r", "--bogus"})); err == nil {
		t.Error("fail-unknown-flag: accepted")
	}
	fs, _, _, _ = newFS()
	if err := fs.Parse(interspersed(fs, []string{"s@r", "--for"})); err == nil {
		t.Error("fail-missing-value: accepted")
	}
}

// TestGroupHelp: a command group's help goes to stdout and succeeds; the
// group alone is an error with its usage on stderr, stdout left empty.
func TestGroupHelp(t *testing.T) {
	for _, group := range []string{"audit", "sshca", "grant"} {
		if out, _, code := runCLI(t, group, "help"); code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("ok-%s-help: exit %d, stdout %q", group, code, out)
		}
		if out, errOut, code := runCLI(t, group); code == 0 || out != "" || !strings.Contains(errOut, "Usage") || !strings.Contains(errOut, "a command is required") {
			t.Errorf("fail-%s-bare: exit %d, stdout %q, stderr %q", group, code, out, errOut)
		}
	}
}
