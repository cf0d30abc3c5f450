package model

import (
	"fmt"
	"time"
)

// Flight is one scheduled flight in the canonical fields every model takes, whatever the
// layout of the CSV it was trained from. It is also the named-field request body of
// `POST /predict` ({"instances": [Flight...]}).
type Flight struct {
	Month      int    `json:"month"`
	DayOfMonth int    `json:"day_of_month"`
	DayOfWeek  int    `json:"day_of_week"` // 1 = Monday ... 7 = Sunday, as in BTS data
	Origin     string `json:"origin"`
	Dest       string `json:"dest"`
	Carrier    string `json:"carrier"`
	CRSDepTime int    `json:"crs_dep_time"` // scheduled departure, local time as hhmm (1905 = 19:05)
}

// FieldError names a canonical field whose value is unusable.
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("field %q: %s (got %v)", e.Field, e.Reason, e.Value)
}

// Validate checks that every field is in its calendar or clock range. Categorical fields may
// hold any value: a category the model never saw encodes as all zeros.
func (f *Flight) Validate() error {
	switch {
	case f.Month < 1 || f.Month > 12:
		return &FieldError{"month", f.Month, "must be 1..12"}
	case f.DayOfMonth < 1 || f.DayOfMonth > daysIn[f.Month-1]:
		return &FieldError{"day_of_month", f.DayOfMonth, fmt.Sprintf("must be 1..%d for month %d", daysIn[f.Month-1], f.Month)}
	case f.DayOfWeek < 1 || f.DayOfWeek > 7:
		return &FieldError{"day_of_week", f.DayOfWeek, "must be 1 (Monday)..7 (Sunday)"}
	case f.CRSDepTime < 0 || f.CRSDepTime > 2400 || f.CRSDepTime%100 > 59:
		return &FieldError{"crs_dep_time", f.CRSDepTime, "must be a clock time hhmm, 0000..2400"}
	}
	return nil
}

// daysIn allows 29 February: the model has no year, and a leap day is a real departure date.
var daysIn = [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// daysBefore[m-1] is the day of a leap year that precedes month m.
var daysBefore = func() [12]int {
	var d [12]int
	for m := 1; m < 12; m++ {
		d[m] = d[m-1] + daysIn[m-1]
	}
	return d
}()

// weekdayOf returns the BTS day of week (1 = Monday ... 7 = Sunday) of a calendar date.
func weekdayOf(year, month, day int) int {
	wd := int(time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Weekday())
	if wd == 0 {
		return 7
	}
	return wd
}
