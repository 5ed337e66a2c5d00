package http

import "net/http"

// routesRecovery registers the recovery API and pages. CONTRACT STUB: the
// HTTP engineer fills it (docs/api.md "Recovery").
func (s *Server) routesRecovery(handle func(pattern string, h http.HandlerFunc)) {}
