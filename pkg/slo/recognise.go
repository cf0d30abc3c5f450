package slo

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/contract"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promParser parses the PromQL of foreign specs.
var promParser = parser.NewParser(parser.Options{})

// native is what recognise makes of an event ratio written over delayctl's own metrics.
type native struct {
	kind            Kind
	rateLimitedBad  bool
	clientErrorsBad bool
	threshold       time.Duration
	// routes is the route regular expression the queries select, ".*" when they select all.
	routes string
}

// recognise maps the templates of an event ratio (total plus bad or good) onto a delayctl
// availability or threshold-form latency objective when they read delayctl serve's metrics
// the way delayctl's own rules do. Anything else (other metrics, other labels, other shapes)
// is not recognised and stays PromQL.
//
//	availability: bad   = sum(rate(delayctl_http_requests_total{code=~"5.."}[w]))  (or 429|5.., 4..|5..)
//	              total = sum(rate(delayctl_http_requests_total[w]))
//	latency:      good  = sum(rate(delayctl_http_request_duration_seconds_bucket{le="0.3"}[w]))
//	              or bad = total - good
//	              total = sum(rate(delayctl_http_request_duration_seconds_count[w]))
//
// Each selector may also carry the same route matcher.
func recognise(total, bad, good string) (native, bool) {
	tm, tMatch, ok := counterOf(total)
	if !ok {
		return native{}, false
	}
	routes, ok := routesOf(tMatch)
	if !ok || len(tMatch) > 1 || len(tMatch) == 1 && routes == ".*" {
		return native{}, false
	}
	switch tm {
	case contract.Requests:
		if bad == "" {
			return native{}, false
		}
		bm, bMatch, ok := counterOf(bad)
		if !ok || bm != contract.Requests || !sameRoute(bMatch, tMatch) {
			return native{}, false
		}
		code := bMatch["code"]
		if code == nil || code.Type != labels.MatchRegexp || len(bMatch) != len(tMatch)+1 {
			return native{}, false
		}
		n := native{kind: KindAvailability, routes: routes}
		switch codeSet(code.Value) {
		case "5..":
		case "429|5..":
			n.rateLimitedBad = true
		case "4..|5..":
			n.clientErrorsBad = true
		default:
			return native{}, false
		}
		return n, true
	case contract.Duration + "_count":
		fast := good
		if bad != "" {
			e, err := promParser.ParseExpr(renderWindow(bad, 5*time.Minute))
			if err != nil {
				return native{}, false
			}
			b, ok := unparen(e).(*parser.BinaryExpr)
			if !ok || b.Op != parser.SUB || b.VectorMatching != nil && len(b.VectorMatching.MatchingLabels) > 0 {
				return native{}, false
			}
			if lm, lMatch, ok := counterOf(b.LHS.String()); !ok || lm != tm || !sameRoute(lMatch, tMatch) || len(lMatch) != len(tMatch) {
				return native{}, false
			}
			fast = b.RHS.String()
		}
		gm, gMatch, ok := counterOf(fast)
		if !ok || gm != contract.Duration+"_bucket" || !sameRoute(gMatch, tMatch) || len(gMatch) != len(tMatch)+1 {
			return native{}, false
		}
		le := gMatch["le"]
		if le == nil || le.Type != labels.MatchEqual {
			return native{}, false
		}
		v, err := strconv.ParseFloat(le.Value, 64)
		if err != nil {
			return native{}, false
		}
		d := time.Duration(v * float64(time.Second))
		if _, ok := BucketFor(d); !ok {
			return native{}, false
		}
		return native{kind: KindLatency, threshold: d, routes: routes}, true
	}
	return native{}, false
}

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// counterOf finds the one counter selector of a template shaped sum(rate(sel[w])),
// sum(increase(sel[w])) or rate(sel[w]), and returns its metric name and its other
// matchers by label.
func counterOf(tmpl string) (string, map[string]*labels.Matcher, bool) {
	e, err := promParser.ParseExpr(renderWindow(tmpl, 5*time.Minute))
	if err != nil {
		return "", nil, false
	}
	e = unparen(e)
	if a, ok := e.(*parser.AggregateExpr); ok {
		if a.Op != parser.SUM || len(a.Grouping) > 0 || a.Without {
			return "", nil, false
		}
		e = unparen(a.Expr)
	}
	c, ok := e.(*parser.Call)
	if !ok || c.Func.Name != "rate" && c.Func.Name != "increase" || len(c.Args) != 1 {
		return "", nil, false
	}
	m, ok := c.Args[0].(*parser.MatrixSelector)
	if !ok {
		return "", nil, false
	}
	vs, ok := m.VectorSelector.(*parser.VectorSelector)
	if !ok || vs.OriginalOffset != 0 || vs.Timestamp != nil || vs.StartOrEnd != 0 {
		return "", nil, false
	}
	out := map[string]*labels.Matcher{}
	for _, lm := range vs.LabelMatchers {
		if lm.Name == model.MetricNameLabel {
			continue
		}
		if _, dup := out[lm.Name]; dup {
			return "", nil, false
		}
		out[lm.Name] = lm
	}
	return vs.Name, out, vs.Name != ""
}

// routesOf reads the route matcher as the routes regular expression; ".*" without one.
func routesOf(ms map[string]*labels.Matcher) (string, bool) {
	r := ms["route"]
	switch {
	case r == nil:
		return ".*", true
	case r.Type == labels.MatchEqual:
		return regexp.QuoteMeta(r.Value), true
	case r.Type == labels.MatchRegexp:
		return r.Value, true
	}
	return "", false
}

func sameRoute(a, b map[string]*labels.Matcher) bool {
	ra, rb := a["route"], b["route"]
	if ra == nil || rb == nil {
		return ra == nil && rb == nil
	}
	return ra.Type == rb.Type && ra.Value == rb.Value
}

// codeSet normalises a code regular expression such as "(5..|429)" to its sorted
// alternatives, "429|5..".
func codeSet(re string) string {
	re = strings.TrimSuffix(strings.TrimPrefix(re, "("), ")")
	parts := strings.Split(re, "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	slices.Sort(parts)
	return strings.Join(parts, "|")
}
