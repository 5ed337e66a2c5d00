package main

import (
	"errors"
	"io"
)

// The terminal commands (issue 5): being written.

var errNotYet = errors.New("not implemented yet")

func cmdLogin(args []string, stdout, stderr io.Writer) error   { return errNotYet }
func cmdRequest(args []string, stdout, stderr io.Writer) error { return errNotYet }
func cmdApprove(args []string, stdout, stderr io.Writer) error { return errNotYet }
func cmdGrants(args []string, stdout, stderr io.Writer) error  { return errNotYet }
func cmdEnd(args []string, stdout, stderr io.Writer) error     { return errNotYet }
func cmdSSH(args []string, stdout, stderr io.Writer) error     { return errNotYet }
