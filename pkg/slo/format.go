package slo

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatPercent prints a ratio as a percentage with up to four decimals, never rounding a
// ratio below 1 up to "100%": 0.9995 is "99.95%", 0.9999999 is "99.9999%".
func FormatPercent(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 0):
		return "∞"
	}
	p := v * 100
	var r float64
	if v < 1 && v > 0 {
		r = math.Floor(p*1e4+1e-6) / 1e4
	} else {
		r = math.Round(p*1e4) / 1e4
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "%"
}

// PercentileName names a quantile the way people write it: 0.9 is "p90", 0.999 "p99.9".
func PercentileName(q float64) string {
	return "p" + strconv.FormatFloat(math.Round(q*100*1e4)/1e4, 'f', -1, 64)
}

// FormatDuration prints a latency with sensible precision: "412µs", "3.123ms", "1.25s".
func FormatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Microsecond).String()
	}
	return d.String()
}

// FormatBytes prints a size in the unit it is most likely written in: whole MiB or GiB as
// such, otherwise decimal MB with one decimal.
func FormatBytes(b float64) string {
	switch {
	case math.IsNaN(b):
		return "n/a"
	case b >= 1<<30 && math.Mod(b, 1<<30) == 0:
		return formatFloat(b/(1<<30)) + "GiB"
	case b >= 1<<20 && math.Mod(b, 1<<20) == 0:
		return formatFloat(b/(1<<20)) + "MiB"
	case b >= 1e9:
		return formatFloat(math.Round(b/1e7)/100) + "GB"
	case b >= 1e6:
		return formatFloat(math.Round(b/1e5)/10) + "MB"
	case b >= 1e3:
		return formatFloat(math.Round(b/1e2)/10) + "kB"
	}
	return formatFloat(b) + "B"
}

// FormatRate prints requests per second with three significant decimals at most.
func FormatRate(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return formatFloat(math.Round(v*100)/100) + " req/s"
}

// formatWindow prints a window in days when it is whole days ("30d"), else as a duration.
func formatWindow(d time.Duration) string {
	day := 24 * time.Hour
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	if d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return strings.TrimSuffix(d.String(), "0s")
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
