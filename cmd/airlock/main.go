// Command airlock is Airlock's one binary: the server (serve) and the
// command-line clients (admin …).
//
// Flags come before positional arguments. Machine-readable output goes to
// stdout alone; progress and diagnostics go to stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `airlock — passkey-first privileged access

Usage:
  airlock serve [--config FILE] [--listen ADDR] [--data DIR] [--store URL] [--rp-id ID] [--origin URL]... [--tls-cert F --tls-key F]
  airlock admin [--server URL] [--token TOKEN] COMMAND ...   (run 'airlock admin help')
  airlock admin bootstrap --reissue [--data DIR | --store URL] [serve's flags]
  airlock admin posture --device ID [--managed] [--disk-encrypted] … [--data DIR | --store URL]   (on the server host)
  airlock policy validate|test|simulate|report|init ...   (run 'airlock policy help')
  airlock audit export|checkpoint|pubkey|proof|verify ... [--data DIR | --store URL]   (run 'airlock audit help')
  airlock breakglass export [--data DIR | --store URL] > breakglass.json   (run 'airlock breakglass help')
  airlock login [--server URL] [--no-browser] [--timeout 5m]
  airlock request [--for 30m] --reason "…" [--ticket T] [--no-wait] ROLE@RESOURCE|tier:N
  airlock approve [--server URL] [--no-browser] REQUEST_ID
  airlock grants [--all] [--json]
  airlock end GRANT_ID
  airlock ssh [--grant ID] [-p PORT] [-F CONFIG] [-o OPTION]... [--ssh PROG] [user@]host [command…]
  airlock sshca pubkey [--data DIR | --config FILE | --server URL]
  airlock grant verify [--jwks FILE | --server URL | --data DIR | --config FILE] [--aud RESOURCE] TOKEN|-
  airlock grant jwks [--data DIR | --config FILE]
  airlock version
`

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(args[1:])
	case "admin":
		err = cmdAdmin(args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(args[1:], stdout, stderr)
	case "breakglass":
		err = cmdBreakGlass(args[1:], stdout, stderr)
	case "login":
		err = cmdLogin(args[1:], stdout, stderr)
	case "request":
		err = cmdRequest(args[1:], stdout, stderr)
	case "approve":
		err = cmdApprove(args[1:], stdout, stderr)
	case "grants":
		err = cmdGrants(args[1:], stdout, stderr)
	case "end":
		err = cmdEnd(args[1:], stdout, stderr)
	case "ssh":
		err = cmdSSH(args[1:], stdout, stderr)
	case "sshca":
		err = cmdSSHCA(args[1:], stdout, stderr)
	case "grant":
		err = cmdGrant(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "airlock: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	// A command that ran another program (airlock ssh) exits with its
	// status; a refusal (a denied request) with its own.
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(stderr, "airlock: %v\n", ee.Err)
		}
		return ee.Code
	}
	if err != nil {
		fmt.Fprintf(stderr, "airlock: %v\n", err)
		return 1
	}
	return 0
}
