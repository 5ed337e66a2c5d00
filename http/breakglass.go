package http

import "net/http"

// routesBreakGlass registers the break-glass API and pages. CONTRACT STUB:
// the HTTP engineer fills it (docs/api.md "Break-glass").
func (s *Server) routesBreakGlass(handle func(pattern string, h http.HandlerFunc)) {}
