package http

import "net/http"

// routesCLI registers the issue-5 routes of this file (being written).
func (s *Server) routesCLI(handle func(pattern string, h http.HandlerFunc)) {}
