package http

import "net/http"

// routesSSH registers the issue-5 routes of this file (being written).
func (s *Server) routesSSH(handle func(pattern string, h http.HandlerFunc)) {}
