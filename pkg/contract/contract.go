// Package contract is the metrics contract between serve and slo: the metric names, label
// names and values, status codes and histogram bucket bounds that `delayctl serve` exports
// and that `delayctl slo` reads (rules, --scrape, --prometheus). Both packages take them from
// here, so renaming a metric or moving a bucket bound changes both sides at once; the tests
// of this package start a real server and check that every series the SLO tooling reads is
// exported, from startup, with these bounds.
package contract

import (
	"math"
	"net/http"
)

// Metric names.
const (
	// Requests counts HTTP requests answered, by Route, Method and Code.
	Requests = "delayctl_http_requests_total"
	// Duration is the request duration histogram in seconds, by Route and Method, with
	// DurationBuckets as its bounds.
	Duration = "delayctl_http_request_duration_seconds"
	// DurationBucket and DurationCount are Duration's series as Prometheus stores them.
	DurationBucket = Duration + "_bucket"
	DurationCount  = Duration + "_count"
	// InFlight is the number of requests being handled.
	InFlight = "delayctl_http_requests_in_flight"
	// Shed counts prediction requests refused with CodeShed by load shedding.
	Shed = "delayctl_shed_requests_total"
	// RateLimited counts requests refused with CodeRateLimited by the per-key rate limit.
	RateLimited = "delayctl_rate_limited_requests_total"
	// RSS is the server's resident memory, from client_golang's process collector.
	RSS = "process_resident_memory_bytes"
	// DriftPredictionPSI is the population stability index of the predicted probabilities
	// over the drift window against the model's training baseline.
	DriftPredictionPSI = "delayctl_drift_prediction_psi"
	// DriftFeaturePSI is the same per feature, by LabelVariable.
	DriftFeaturePSI = "delayctl_drift_feature_psi"
	// DriftUnseenRatio is the share of predictions in the drift window whose category the
	// model never saw, by LabelVariable.
	DriftUnseenRatio = "delayctl_drift_feature_unseen_ratio"
)

// DriftGauges are the metrics serve exports only once its drift window holds enough
// predictions for a model with a training baseline: an empty window has no distribution, and
// a 0 would claim there is no drift. Rules over them stay quiet until then.
var DriftGauges = map[string]bool{DriftPredictionPSI: true, DriftFeaturePSI: true, DriftUnseenRatio: true}

// Label names.
const (
	// LabelRoute is the mux pattern that served a request (one of Routes).
	LabelRoute = "route"
	// LabelMethod is the request method: one of Methods.
	LabelMethod = "method"
	// LabelCode is the status code answered, in decimal.
	LabelCode = "code"
	// LabelLE is the upper bound of a histogram bucket.
	LabelLE = "le"
	// LabelVariable is a model input variable (a drift gauge's feature).
	LabelVariable = "variable"
)

// Route label values: the mux pattern of each route.
const (
	RouteRoot          = "/"
	RoutePredict       = "/predict"
	RouteHealthz       = "/healthz"
	RouteReadyz        = "/readyz"
	RouteMetrics       = "/metrics"
	RouteV1Model       = "/v1/models/{name}"
	RouteV2            = "/v2"
	RouteV2Live        = "/v2/health/live"
	RouteV2Ready       = "/v2/health/ready"
	RouteV2Model       = "/v2/models/{name}"
	RouteV2ModelReady  = "/v2/models/{name}/ready"
	RouteV2Infer       = "/v2/models/{name}/infer"
	RouteV2VModel      = "/v2/models/{name}/versions/{version}"
	RouteV2VModelReady = "/v2/models/{name}/versions/{version}/ready"
	RouteV2VInfer      = "/v2/models/{name}/versions/{version}/infer"
	RouteAdminReload   = "/admin/reload"
	// RouteUnmatched labels requests for paths no route serves (answered 404).
	RouteUnmatched = "unmatched"
)

// Routes are every route label value, in the order serve registers them.
var Routes = []string{
	RouteRoot, RoutePredict, RouteHealthz, RouteReadyz, RouteMetrics, RouteV1Model,
	RouteV2, RouteV2Live, RouteV2Ready, RouteV2Model, RouteV2ModelReady, RouteV2Infer,
	RouteV2VModel, RouteV2VModelReady, RouteV2VInfer, RouteAdminReload, RouteUnmatched,
}

// MethodOther is the method label of any method not in Methods' standard list, so that a
// client cannot grow the label set.
const MethodOther = "other"

// Methods are the method label values.
var Methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace, MethodOther,
}

// Status codes with a meaning of their own for SLOs.
const (
	// CodeShed is what load shedding answers: the server was too busy to serve the
	// request. It is a server error, and availability objectives count it as bad.
	CodeShed = http.StatusServiceUnavailable
	// CodeRateLimited is what the per-key rate limit answers: the client went over its
	// quota. Availability objectives count it as good unless they set rate_limited_bad.
	CodeRateLimited = http.StatusTooManyRequests
)

// Codes are the status codes delayctl serve answers with. Their Requests series exist from
// startup at 0 on every route and each method the route takes, so that the first request
// with a new code is counted by rate() and increase() (which need a sample before it) and
// an error ratio is 0, not absent, before the first error.
var Codes = []int{
	http.StatusOK,
	http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound, http.StatusMethodNotAllowed,
	http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
	http.StatusUnprocessableEntity, CodeRateLimited,
	http.StatusInternalServerError, CodeShed,
}

// Code classes: regular expressions over LabelCode, as PromQL matchers take them.
const (
	ClassSuccess     = "2..|3.."
	ClassServerError = "5.."
	ClassClientError = "4.."
	// ClassRateLimited is CodeRateLimited's code.
	ClassRateLimited = "429"
)

// DurationBuckets are Duration's bucket upper bounds in seconds: fine below 10 ms, where a
// microsecond model's latency lives, and coarse up to the write timeout. A latency objective
// judged from Prometheus data is exact only when its threshold is one of them.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .2, .3, .4, .5, .75, 1, 2.5, 5, 10}

// BucketFor returns the bucket bound equal to seconds, or false when there is none.
func BucketFor(seconds float64) (float64, bool) {
	for _, b := range DurationBuckets {
		if math.Abs(b-seconds) < 1e-12 {
			return b, true
		}
	}
	return 0, false
}
