package main

import "io"

// `airlock sshca pubkey` and `airlock grant verify` (issue 5): being written.

func cmdSSHCA(args []string, stdout, stderr io.Writer) error { return errNotYet }
func cmdGrant(args []string, stdout, stderr io.Writer) error { return errNotYet }
