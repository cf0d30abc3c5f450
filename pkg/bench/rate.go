package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Rate is a request rate: Freq requests every Per. The zero Rate means "as fast as the
// workers go" (the wrk model, --rate 0).
//
// Rate implements the Set/String/Type methods of a command-line flag value, so a CLI can bind
// it directly.
type Rate struct {
	Freq int
	Per  time.Duration
}

// rateUnits are the unit suffixes a rate accepts after the slash, besides any Go duration
// such as 100ms or 1m.
var rateUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
	"s": time.Second, "sec": time.Second, "m": time.Minute, "min": time.Minute, "h": time.Hour,
}

// ParseRate parses "500/s", "500/1s", "30/m", "10/100ms", a bare "500" (per second), or "0"
// and "max" (no pacing).
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "max" || s == "0" {
		return Rate{}, nil
	}
	num, unit, hasUnit := strings.Cut(s, "/")
	freq, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || freq < 0 {
		return Rate{}, fmt.Errorf("invalid rate %q: want a non-negative request count such as 500/s", s)
	}
	per := time.Second
	if hasUnit {
		unit = strings.TrimSpace(unit)
		if d, ok := rateUnits[unit]; ok {
			per = d
		} else if d, err := time.ParseDuration(unit); err == nil && d > 0 {
			per = d
		} else {
			return Rate{}, fmt.Errorf("invalid rate %q: unknown unit %q (want s, m, h, ms or a duration such as 100ms)", s, unit)
		}
	}
	if freq == 0 {
		return Rate{}, nil
	}
	r := Rate{Freq: freq, Per: per}
	if err := r.check(); err != nil {
		return Rate{}, fmt.Errorf("invalid rate %q: %w", s, err)
	}
	return r, nil
}

// check refuses a rate vegeta's pacer cannot keep: negative, or more than one request per
// nanosecond, where the pacer's interval Per/Freq rounds to zero and it divides by it.
func (r Rate) check() error {
	switch {
	case r.Freq < 0 || r.Per < 0:
		return errors.New("must not be negative")
	case r.Freq > 0 && r.Per > 0 && int64(r.Freq) > r.Per.Nanoseconds():
		return fmt.Errorf("more than one request per nanosecond: the highest rate is %d/s", time.Second.Nanoseconds())
	}
	return nil
}

// IsMax reports whether the rate is unpaced (--rate 0).
func (r Rate) IsMax() bool { return r.Freq == 0 || r.Per == 0 }

// PerSecond is the rate in requests per second, 0 when unpaced.
func (r Rate) PerSecond() float64 {
	if r.IsMax() {
		return 0
	}
	return float64(r.Freq) / r.Per.Seconds()
}

// String formats the rate the way ParseRate reads it: "500/s", "30/m", "10/100ms" or "0".
func (r Rate) String() string {
	if r.IsMax() {
		return "0"
	}
	switch r.Per {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Freq)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Freq)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Freq)
	}
	return fmt.Sprintf("%d/%s", r.Freq, r.Per)
}

// Set parses s into r (flag.Value).
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Type names the flag value type in help output.
func (r *Rate) Type() string { return "rate" }

// MarshalText formats the rate for JSON and YAML.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a rate from JSON or YAML.
func (r *Rate) UnmarshalText(b []byte) error { return r.Set(string(b)) }

func (r Rate) pacer() vegeta.Rate { return vegeta.Rate{Freq: r.Freq, Per: r.Per} }
