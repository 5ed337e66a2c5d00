package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"airlock"
	"airlock/audit"
	"airlock/breakglass"
)

const breakGlassUsage = `airlock breakglass — break-glass set-up on the server host, from the store directly

Usage (flags before arguments; every command also takes serve's --config,
--data DIR and --store URL to find the store):
  airlock breakglass export > breakglass.json
                     the static credential file of every enabled break-glass account
                     holding a sealed (device-bound) passkey: account ids, names and
                     the passkeys' public keys and credential ids, no secrets. Point
                     breakglass.credentials_file at it so that break-glass works while
                     the store is down; export again after every enrolment or re-seal.
                     Recorded as breakglass.credentials_exported.

See docs/breakglass.md for the runbook.
`

// cmdBreakGlass runs `airlock breakglass …`.
func cmdBreakGlass(args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp("breakglass", breakGlassUsage, args, stdout, stderr); done {
		return err
	}
	cmd, args := args[0], args[1:]
	if cmd != "export" {
		return fmt.Errorf("breakglass: unknown command %q (run 'airlock breakglass help')", cmd)
	}
	fs := flag.NewFlagSet("breakglass "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("breakglass export takes no arguments (flags go before arguments; the file goes to stdout)")
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	// Exporting from a data directory that does not exist would create an
	// empty store: refuse instead.
	if cfg.Store == "" {
		if _, err := os.Stat(cfg.Data); err != nil {
			return fmt.Errorf("breakglass export: data directory: %w", err)
		}
	}
	ctx := context.Background()
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	file, err := breakglass.ExportCredentials(ctx, store)
	if err != nil {
		return fmt.Errorf("breakglass export: %s", airlock.ErrorMessage(err))
	}
	details := map[string]any{"via": "cli", "bytes": len(file)}
	if u := os.Getenv("USER"); u != "" {
		details["os_user"] = u
	}
	if err := audit.New(store, nil, nil).Record(ctx, airlock.AuditEvent{Type: "breakglass.credentials_exported", Actor: "cli", Details: details}); err != nil {
		return fmt.Errorf("breakglass export: recording the export: %w", err)
	}
	_, err = stdout.Write(file)
	return err
}
