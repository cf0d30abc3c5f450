// Package bench load-tests HTTP targets with vegeta's attacker embedded
// (github.com/tsenart/vegeta/v12/lib) and reports like wrk: latency percentiles, a histogram,
// status codes, error kinds and rates, as text or JSON.
//
// Options group what to send (Target), how (Sender), the schedule (Rate, Duration) and what
// to write (Outputs); Sender is resolved once per attack into the worker counts and the
// connection cap. --from-data's model comes through Target.LoadModel, injected by the caller.
//
// Results stream: a Summary keeps counters and a latency.Histogram, never the results, so
// memory stays flat over millions of requests, and every result can also go to a vegeta gob
// results file (vegeta report/plot/encode read it; so does RunReport), an HTML plot and PNGs.
//
// Two things set it apart from running vegeta itself:
//   - every attack on plain http:// targets, paced or --rate 0, goes over a lean HTTP/1.1
//     transport (fastTransport) instead of net/http's, which roughly doubles the requests per
//     second one core sends; --client std, --http2, https://, a proxy from the environment or
//     an Expect header select net/http's;
//   - Capacity grows then bisects constant-rate steps to find the highest rate at which a
//     Judge (an SLO, from pkg/slo) still passes.
//
// Pitfalls of the vegeta library this package handles: an Attacker is single-use (one per
// attack or capacity step); workers are always capped, and when the cap makes the sent rate
// fall short of the requested one the report says so (vegeta stamps a request when a worker
// picks it up, so queueing in the generator would otherwise vanish from the latencies);
// response bodies are read only up to MaxBody (default 0); the client is passed with
// vegeta.Client, which replaces the transport, so no transport option follows it.
package bench
