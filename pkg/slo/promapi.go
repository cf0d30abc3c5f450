package slo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/delayctl/delayctl/pkg/inputerr"
)

// PromClient runs instant queries against a Prometheus server's HTTP API (/api/v1/query).
type PromClient struct {
	// URL is the server's base URL, e.g. http://prometheus:9090.
	URL    string
	Client *http.Client
}

type promResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// errEmpty marks a query that returned no series: nothing was recorded in the range.
var errEmpty = errors.New("empty result")

// Query evaluates expr at time at and returns its single value. A query that returns no
// series gives errEmpty; more than one series is an error.
func (c PromClient) Query(ctx context.Context, expr string, at time.Time) (float64, error) {
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', -1, 64)}}
	endpoint := strings.TrimSuffix(c.URL, "/") + "/api/v1/query"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, inputerr.Wrap(fmt.Errorf("invalid prometheus url %q: %w", c.URL, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("could not query prometheus at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("could not read prometheus response: %w", err)
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return 0, inputerr.Wrap(fmt.Errorf("prometheus at %s answered %s with a body that is not its API's JSON: %w", c.URL, resp.Status, err))
	}
	if pr.Status != "success" {
		err := fmt.Errorf("prometheus query %q failed: %s: %s", expr, pr.ErrorType, pr.Error)
		if pr.ErrorType == "bad_data" { // the query itself, built from the SLO file and --selector
			return 0, inputerr.Wrap(err)
		}
		return 0, err
	}
	switch pr.Data.ResultType {
	case "vector":
	case "scalar": // result is [<time>, "<value>"]
		var str string
		if len(pr.Data.Result) != 2 || json.Unmarshal(pr.Data.Result[1], &str) != nil {
			return 0, inputerr.Wrap(fmt.Errorf("prometheus query %q: malformed scalar result", expr))
		}
		return sampleValue([2]any{nil, str})
	default:
		return 0, inputerr.Wrap(fmt.Errorf("prometheus query %q returned a %s, want a vector", expr, pr.Data.ResultType))
	}
	if len(pr.Data.Result) == 0 {
		return 0, errEmpty
	}
	if len(pr.Data.Result) > 1 {
		return 0, inputerr.Wrap(fmt.Errorf("prometheus query %q returned %d series, want one", expr, len(pr.Data.Result)))
	}
	var s promSample
	if err := json.Unmarshal(pr.Data.Result[0], &s); err != nil {
		return 0, inputerr.Wrap(fmt.Errorf("prometheus query %q: bad sample: %w", expr, err))
	}
	return sampleValue(s.Value)
}

func sampleValue(v [2]any) (float64, error) {
	str, ok := v[1].(string)
	if !ok {
		return 0, inputerr.Wrap(fmt.Errorf("prometheus sample value %v is not a string", v[1]))
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return 0, inputerr.Wrap(fmt.Errorf("prometheus sample value %q: %w", str, err))
	}
	return f, nil
}

// PromMeasure measures every objective of s on a Prometheus server over the range
// [at-rng, at]. extra holds label matchers added to every selector (e.g. job="delayctl").
func PromMeasure(ctx context.Context, c PromClient, s *SLO, extra string, rng time.Duration, at time.Time) (map[string]Measurement, error) {
	q := newQueries(s, extra)
	out := map[string]Measurement{}
	get := func(expr string) (float64, error) {
		v, err := c.Query(ctx, expr, at)
		if errors.Is(err, errEmpty) {
			return math.NaN(), nil
		}
		return v, err
	}
	for _, o := range s.Objectives {
		mq, err := q.measure(o, rng)
		if err != nil {
			return nil, inputerr.Wrap(err)
		}
		m := Measurement{Value: math.NaN()}
		if mq.Total != "" {
			if m.Total, err = get(mq.Total); err != nil {
				return nil, err
			}
			if m.Good, err = get(mq.Good); err != nil {
				return nil, err
			}
			if math.IsNaN(m.Total) {
				m.Total, m.Good = 0, 0
			}
		}
		if mq.Value != "" {
			if m.Value, err = get(mq.Value); err != nil {
				return nil, err
			}
		}
		switch o.Kind {
		case KindLatency:
			if o.Percentile {
				m.Estimate = true
				m.Note = fmt.Sprintf("%s is histogram_quantile's estimate; the verdict counts the %s bucket exactly",
					PercentileName(o.Target), FormatDuration(o.Threshold))
			}
		case KindRatio:
			m.Note = rawNote(o)
		case KindThroughput:
			if math.IsNaN(m.Value) {
				m.Value = 0 // no successful request in the range
			}
			m.Note = "average over the range"
		case KindMemory:
			if math.IsNaN(m.Value) {
				m.Note = contract.RSS + " has no samples in the range"
			} else {
				m.Note = "highest sample in the range"
			}
		case KindModel:
			if sm, skip := skipQuality(o); skip {
				m = sm
			} else if math.IsNaN(m.Value) {
				m.Note = driftNote(o)
			} else {
				m.Note = "latest value"
			}
		}
		out[o.Name] = m
	}
	return out, nil
}
