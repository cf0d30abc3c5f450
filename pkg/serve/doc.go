// Package serve serves a delayctl model over HTTP: the seeds' own calls (POST /predict with
// {"x": [...]} or named-field instances, GET / with a JSON body, POST with a form body), the
// Open Inference Protocol v2 REST routes that KServe, Triton and MLServer clients speak, health
// and readiness probes, model metadata and Prometheus metrics on a registry of its own.
//
// The server is built to hold its SLOs under load and bad input: every client mistake is a 4xx
// JSON answer naming the problem, bodies and batches are bounded, slow clients are cut off by
// timeouts, work beyond --max-inflight is shed with 503 at once, memory is bounded by a budget
// for buffered bodies and a connection cap derived from GOMEMLIMIT (budget.go, conns.go), an
// adaptive limit on the connections served at once follows the queueing delay a canary
// measures and parks the excess until it gets a place or a 503 (limit.go, conns.go, queue.go),
// /metrics can move to a listener of its own (protect.go), handler panics become counted
// 500s, optional API keys (stored as SHA-256 hashes) and per-key rate limits guard the
// non-public routes, and the model can be reloaded (signal, POST /admin/reload, file watch)
// and the process shut down without failing a request.
//
// New builds a Server whose Handler can be tested with httptest; Run owns the http.Server and
// its lifecycle.
package serve
