// Package slo turns a service level objective file into verdicts a CI pipeline and an
// on-call engineer can act on.
//
// The flow follows sloth's split of spec and model:
//
//	configs/slo.yaml --LoadSpec--> Spec (yaml tags) --Compile--> SLO (validated, tag-free)
//	SLO + a source (vegeta results files, two /metrics scrapes, or a Prometheus server)
//	    --Evaluate--> Report --Reporter--> table | json | markdown | html
//	SLO --Rules--> Prometheus recording and multi-window multi-burn-rate alerting rules
//	SLO --Dashboard--> a Grafana dashboard over serve's metrics and the recorded rules
//
// Load also reads sloth "prometheus/v1" specs and OpenSLO v1 SLOs (LoadForeign): SLIs
// written over serve's metrics map onto delayctl objectives, other PromQL becomes a ratio
// objective that only Prometheus evaluates, and what has no mapping is refused by path.
//
// Four kinds of objective are understood: availability (the share of requests answered
// without a transport error and without a bad status), latency (a percentile bound such as
// p90 <= 400ms, or a threshold share such as 99% of requests <= 300ms), throughput
// (successful requests per second) and memory (the server's resident set size); plus the
// ratio objectives of foreign specs.
//
// Availability and latency are event ratios, so they have an error budget: with a target T
// over N requests the budget allows (1-T)*N bad ones. A bench run is far shorter than the
// SLO window, so reports give the run's SLI, the share of the run's own budget it used, the
// burn rate (error ratio divided by 1-T) and the share of the whole window's budget the run
// would have spent, never "met the monthly SLO".
//
// Latency SLIs from results files are exact: every request is compared with the threshold
// as it is read. Percentile values come from pkg/latency (never below the exact value and
// under 0.1% above it) and are clamped so that they agree with the exact verdict. SLIs
// computed from Prometheus histograms are exact only when the threshold is a bucket bound;
// percentiles from histograms are linear-interpolation estimates and are labelled so.
package slo
