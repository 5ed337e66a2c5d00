package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"airlock"
	"airlock/audit"

	"golang.org/x/mod/sumdb/note"
)

const auditUsage = `airlock audit — the tamper-evident audit log, read from the store directly

Usage (flags before arguments; every command also takes serve's --config,
--data DIR and --store URL to find the store and the signing key):
  airlock audit export [--since SEQ]      the events after SEQ (default 0: all) as JSON lines,
                                          each line exactly an event's leaf (its canonical JSON)
  airlock audit checkpoint                the latest signed checkpoint (C2SP tlog-checkpoint note)
  airlock audit pubkey                    the checkpoint verifier key (note verifier key text)
  airlock audit proof SEQ                 inclusion proof of event SEQ in the latest checkpoint (JSON)
  airlock audit verify [--pubkey KEY|FILE] [--log-origin ORIGIN] [--checkpoint FILE]...
                                          recompute every leaf hash and the whole tree, compare the
                                          stored hashes and index columns, check every checkpoint's
                                          signature and consistency; report as JSON; exit 1 naming
                                          the first bad sequence number on any fault.
                                          --checkpoint (repeatable): a signed checkpoint kept outside
                                          the store (a saved 'airlock audit checkpoint'); it must
                                          verify with the key, the log must have its size and the
                                          tree recomputed from the leaves its root

export and proof reveal events, so they are recorded as audit.read (and fail
if that cannot be recorded); checkpoint, pubkey and verify write nothing, so
verify also works on a read-only copy of the data.
`

// cmdAudit runs `airlock audit …`.
func cmdAudit(args []string, stdout, stderr io.Writer) error {
	if done, err := groupHelp("audit", auditUsage, args, stdout, stderr); done {
		return err
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("audit "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	resolve := configFlags(fs)
	var (
		since  *int64
		pubkey *string
		origin *string
		held   multiFlag
		nargs  = 0
	)
	switch cmd {
	case "export":
		since = fs.Int64("since", 0, "export the events with a sequence number greater than this")
	case "checkpoint", "pubkey":
	case "proof":
		nargs = 1
	case "verify":
		pubkey = fs.String("pubkey", "", "verifier key text or a file holding it (default: derived from the signing key file)")
		origin = fs.String("log-origin", "", "the origin every checkpoint must name (default: any)")
		fs.Var(&held, "checkpoint", "a signed checkpoint `FILE` kept outside the store to check the log against (repeatable)")
	default:
		return fmt.Errorf("audit: unknown command %q (run 'airlock audit help')", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != nargs {
		return fmt.Errorf("audit %s: want %d argument(s), got %d (flags go before arguments)", cmd, nargs, fs.NArg())
	}
	cfg, err := resolve()
	if err != nil {
		return err
	}
	ctx := context.Background()

	if cmd == "pubkey" {
		key, err := audit.LoadKey(cfg.auditKeyFile())
		if err != nil {
			return fmt.Errorf("audit pubkey: %w (the key is made when serve first starts)", err)
		}
		fmt.Fprintln(stdout, key.VerifierKey)
		return nil
	}

	// verify must not create anything: refuse a missing SQLite store
	// instead of creating an empty one that would verify.
	if cmd == "verify" && cfg.Store == "" {
		if _, err := os.Stat(cfg.Data); err != nil {
			return fmt.Errorf("audit verify: data directory: %w", err)
		}
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	switch cmd {
	case "export":
		if *since < 0 {
			return fmt.Errorf("audit export: --since must be a sequence number (≥ 0)")
		}
		if err := recordCLIRead(ctx, store, map[string]any{"command": "export", "since": *since}); err != nil {
			return err
		}
		_, err := audit.Export(ctx, store, stdout, *since)
		return err
	case "checkpoint":
		cp, err := store.LatestAuditCheckpoint(ctx)
		if airlock.ErrorCode(err) == airlock.ENOTFOUND {
			return errors.New("audit checkpoint: no checkpoint yet (serve signs one every 1000 events, every 10 s and at shutdown)")
		} else if err != nil {
			return err
		}
		_, err = stdout.Write(cp.Text)
		return err
	case "proof":
		seq, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil || seq < 1 {
			return fmt.Errorf("audit proof: %q is not a sequence number", fs.Arg(0))
		}
		if err := recordCLIRead(ctx, store, map[string]any{"command": "proof", "seq": seq}); err != nil {
			return err
		}
		p, err := audit.Prove(ctx, store, seq)
		if err != nil {
			return fmt.Errorf("audit proof: %s", airlock.ErrorMessage(err))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}

	// verify
	verifiers, err := verifyKeys(cfg, *pubkey)
	if err != nil {
		return err
	}
	heldCPs, err := readHeldCheckpoints(held)
	if err != nil {
		return err
	}
	rep, err := audit.Verify(ctx, store, audit.VerifyOptions{Verifiers: verifiers, Origin: *origin, Held: heldCPs})
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stderr, "audit verify: %s\n", p)
	}
	if rep.MoreProblems > 0 {
		fmt.Fprintf(stderr, "audit verify: … and %d more problems\n", rep.MoreProblems)
	}
	var heldBad []string
	for _, h := range rep.Held {
		fmt.Fprintf(stderr, "audit verify: %s\n", h)
		if !h.OK {
			heldBad = append(heldBad, h.Name+" ("+h.Fault+")")
		}
	}
	if !rep.OK() {
		msg := "audit verify: FAILED"
		if rep.FirstBad != 0 {
			msg += fmt.Sprintf(": first bad seq %d", rep.FirstBad)
		}
		if len(heldBad) > 0 {
			msg += ": held checkpoint " + strings.Join(heldBad, ", ") + " does not match the log"
		}
		return errors.New(msg)
	}
	fmt.Fprintf(stderr, "audit verify: OK: %d events, %d checkpoints verified, signed up to seq %d\n",
		rep.Events, rep.ValidCheckpoints, rep.Covered)
	if rep.Covered < rep.Events {
		fmt.Fprintf(stderr, "audit verify: events %d–%d are not covered by a checkpoint yet\n", rep.Covered+1, rep.Events)
	}
	return nil
}

// readHeldCheckpoints reads the --checkpoint files; a file that cannot be
// read is an error (nothing is verified), one that is not a checkpoint
// signed by a trusted key is a fault Verify reports.
func readHeldCheckpoints(files []string) ([]audit.HeldCheckpoint, error) {
	out := make([]audit.HeldCheckpoint, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("audit verify: --checkpoint: %w", err)
		}
		out = append(out, audit.HeldCheckpoint{Name: f, Text: b})
	}
	return out, nil
}

// verifyKeys returns the verifiers verify trusts: --pubkey (key text, or a
// file holding it) or else the key derived from the signing key file, plus
// the configured trusted keys.
func verifyKeys(cfg Config, pubkey string) (note.Verifiers, error) {
	if pubkey != "" {
		text := pubkey
		if _, err := note.NewVerifier(pubkey); err != nil {
			b, ferr := os.ReadFile(pubkey)
			if ferr != nil {
				return nil, fmt.Errorf("audit verify: --pubkey is neither a verifier key nor a readable file: %v", err)
			}
			text = strings.TrimSpace(string(b))
		}
		v, err := note.NewVerifier(text)
		if err != nil {
			return nil, fmt.Errorf("audit verify: --pubkey: %v", err)
		}
		return cfg.auditVerifiers(v)
	}
	key, err := audit.LoadKey(cfg.auditKeyFile())
	if err != nil {
		return nil, fmt.Errorf("audit verify: %w (give the verifier key with --pubkey)", err)
	}
	return cfg.auditVerifiers(key.Verifier)
}

// recordCLIRead records that the log was read from the command line.
func recordCLIRead(ctx context.Context, store airlock.AuditStore, details map[string]any) error {
	details["via"] = "cli"
	if u := os.Getenv("USER"); u != "" {
		details["os_user"] = u
	}
	if err := audit.New(store, nil, nil).Record(ctx, airlock.AuditEvent{Type: "audit.read", Actor: "cli", Details: details}); err != nil {
		return fmt.Errorf("audit: recording the read: %w", err)
	}
	return nil
}
