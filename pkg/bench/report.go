package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/delayctl/delayctl/pkg/inputerr"
)

// Reporter writes a report in one format (vegeta's Reporter shape).
type Reporter func(io.Writer) error

// NewReporter returns the reporter for format "text" or "json".
func NewReporter(format string, rep *Report) (Reporter, error) {
	switch format {
	case "", "text":
		return NewTextReporter(rep), nil
	case "json":
		return NewJSONReporter(rep), nil
	}
	return nil, inputerr.Errorf("unknown output format %q: want text or json", format)
}

// NewJSONReporter writes the report as one indented JSON document.
func NewJSONReporter(rep *Report) Reporter {
	return func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
}

// NewTextReporter writes the report in wrk's layout, extended with the latency percentiles,
// a histogram, status codes and error kinds.
func NewTextReporter(rep *Report) Reporter {
	return func(w io.Writer) error {
		var b strings.Builder
		r := rep
		if r.Target != "" {
			fmt.Fprintf(&b, "Bench @ %s\n", r.Target)
		}
		if r.Mode != "" {
			fmt.Fprintf(&b, "  %s\n", r.Mode)
		}
		l := r.Latency
		fmt.Fprintf(&b, "  %-10s %9s %9s %9s %10s\n", "Latency", "Avg", "Stdev", "Max", "+/- Stdev")
		fmt.Fprintf(&b, "  %-10s %9s %9s %9s %9.2f%%\n", "", fmtDur(l.Mean), fmtDur(l.Stdev), fmtDur(l.Max), 100*l.WithinStdev)
		b.WriteString("  Latency Distribution\n")
		for _, p := range []struct {
			name string
			d    time.Duration
		}{{"min", l.Min}, {"50%", l.P50}, {"75%", l.P75}, {"90%", l.P90}, {"95%", l.P95}, {"99%", l.P99}, {"99.9%", l.P999}, {"max", l.Max}} {
			fmt.Fprintf(&b, "  %7s %9s\n", p.name, fmtDur(p.d))
		}
		if len(r.Histogram) > 0 {
			b.WriteString("  Latency Histogram\n")
			for _, bar := range r.Histogram {
				hashes := int(bar.Percent/2 + 0.5)
				if hashes == 0 && bar.Count > 0 {
					hashes = 1
				}
				rng := fmt.Sprintf("%s - %s", fmtEdge(bar.Low), fmtEdge(bar.High))
				fmt.Fprintf(&b, "  %19s %9d %6.2f%% %s\n", rng, bar.Count, bar.Percent, strings.Repeat("#", hashes))
			}
		}
		fmt.Fprintf(&b, "  %d requests in %s (+%s wait), %s read, %s written\n",
			r.Requests, fmtSecs(r.Duration), fmtDur(r.Wait), fmtBytes(r.BytesIn.Total), fmtBytes(r.BytesOut.Total))
		if r.BytesIn.Total == 0 && r.Requests > 0 {
			b.WriteString("    (response bodies count only up to --max-body bytes each, default 0)\n")
		}
		if len(r.StatusCodes) > 0 {
			codes := make([]string, 0, len(r.StatusCodes))
			for c := range r.StatusCodes {
				codes = append(codes, c)
			}
			slices.SortFunc(codes, func(a, b string) int {
				x, _ := strconv.Atoi(a)
				y, _ := strconv.Atoi(b)
				return x - y
			})
			parts := make([]string, len(codes))
			for i, c := range codes {
				parts[i] = fmt.Sprintf("%s %d", c, r.StatusCodes[c])
			}
			fmt.Fprintf(&b, "  Status codes: %s\n", strings.Join(parts, ", "))
		}
		e := r.Errors
		fmt.Fprintf(&b, "  Socket errors: timeout %d, connection refused %d, connection reset %d, other %d\n",
			e.Timeout, e.ConnectionRefused, e.ConnectionReset, e.Other)
		for _, k := range errorKinds {
			if msg, ok := e.Samples[k]; ok {
				fmt.Fprintf(&b, "    e.g. %s: %s\n", k, msg)
			}
		}
		if e.HTTP > 0 {
			fmt.Fprintf(&b, "  Non-2xx or 3xx responses: %d\n", e.HTTP)
		}
		fmt.Fprintf(&b, "Requests/sec:   %10.2f", r.Rate)
		if r.RequestedRate > 0 {
			fmt.Fprintf(&b, "   (requested %.2f)", r.RequestedRate)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "Successful/sec: %10.2f   (%.2f%% success)\n", r.Throughput, 100*r.SuccessRatio)
		if secs := (r.Duration + r.Wait).Seconds(); secs > 0 && r.BytesIn.Total > 0 {
			fmt.Fprintf(&b, "Transfer/sec:   %10s\n", fmtBytes(uint64(float64(r.BytesIn.Total)/secs)))
		}
		if r.Interrupted {
			b.WriteString("Interrupted: the attack was stopped before its duration ran out.\n")
		}
		for _, warn := range r.Warnings {
			fmt.Fprintf(&b, "Warning: %s\n", warn)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
}

// fmtDur prints a duration with two decimals in the largest fitting unit, as wrk does.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.2fus", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.2fm", d.Minutes())
}

// fmtEdge prints a histogram edge without trailing zeros: 0, 500us, 1ms, 2.5ms.
func fmtEdge(d time.Duration) string {
	s := fmtDur(d)
	for _, unit := range []string{"ns", "us", "ms", "s", "m"} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			if strings.Contains(num, ".") {
				num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
			}
			return num + unit
		}
	}
	return s
}

func fmtSecs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// fmtBytes prints a byte count in 1024-based units, as wrk does.
func fmtBytes(n uint64) string {
	v := float64(n)
	for _, unit := range []string{"B", "KB", "MB", "GB", "TB"} {
		if v < 1024 || unit == "TB" {
			if unit == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.2f%s", v, unit)
		}
		v /= 1024
	}
	return ""
}
