// Package outsider holds no code, only a test that checks Airlock's audit
// log the way someone outside Airlock would: with the exported JSON lines,
// the signed checkpoint, inclusion proofs and the public key, and nothing
// but golang.org/x/mod/sumdb/{note,tlog} and the standard library. The data
// is produced by the real airlock binary (serve, then `airlock audit …`).
package outsider
