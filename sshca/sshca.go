// Package sshca issues short-lived OpenSSH user certificates bound to
// elevation grants (SKELETON: being written, issue 5).
package sshca

// CA is Airlock's SSH user certificate authority.
type CA struct{}
