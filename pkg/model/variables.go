package model

import (
	"sort"
	"strconv"
)

// A variable is a value derived from a Flight that a feature encodes. Variables are fixed in
// code so that an artifact names them and any delayctl can recompute them exactly.
type variable struct {
	numeric bool // an integer value (one-hot or standardised); otherwise a string category
	intOf   func(*Flight) int
	strOf   func(*Flight) string
	doc     string
}

var variables = map[string]variable{
	"month":        {numeric: true, intOf: func(f *Flight) int { return f.Month }, doc: "month, 1..12"},
	"day_of_month": {numeric: true, intOf: func(f *Flight) int { return f.DayOfMonth }, doc: "day of month, 1..31"},
	"day_of_week":  {numeric: true, intOf: func(f *Flight) int { return f.DayOfWeek }, doc: "day of week, 1 = Monday"},
	"dep_hour":     {numeric: true, intOf: depHour, doc: "scheduled departure hour, 0..23 (2400 counts as 0)"},
	"dep_minute_of_day": {numeric: true, intOf: func(f *Flight) int { return depHour(f)*60 + f.CRSDepTime%100 },
		doc: "scheduled departure in minutes after midnight"},
	"day_of_year": {numeric: true, intOf: dayOfYear, doc: "day of a leap year, 1..366, from month and day_of_month"},
	"week_of_year": {numeric: true, intOf: func(f *Flight) int { return (dayOfYear(f)-1)/7 + 1 },
		doc: "week of the year, 1..53, as (day_of_year-1)/7+1"},
	"origin":  {strOf: func(f *Flight) string { return f.Origin }, doc: "origin airport code"},
	"dest":    {strOf: func(f *Flight) string { return f.Dest }, doc: "destination airport code"},
	"carrier": {strOf: func(f *Flight) string { return f.Carrier }, doc: "carrier code"},
}

func depHour(f *Flight) int { return (f.CRSDepTime / 100) % 24 }

func dayOfYear(f *Flight) int {
	if f.Month < 1 || f.Month > 12 {
		return 0
	}
	return daysBefore[f.Month-1] + f.DayOfMonth
}

// Variables lists the variable names a feature may encode, sorted.
func Variables() []string {
	names := make([]string, 0, len(variables))
	for n := range variables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VariableDoc describes a variable for help text, or returns "" for an unknown name.
func VariableDoc(name string) string { return variables[name].doc }

// IsNumeric reports whether the variable is an integer (so it can be standardised) rather than
// a string category.
func IsNumeric(name string) bool { return variables[name].numeric }

// CategoryOf returns a flight's value of a variable in the string form vocabularies record.
func CategoryOf(name string, f *Flight) string {
	v := variables[name]
	if v.numeric {
		return strconv.Itoa(v.intOf(f))
	}
	return v.strOf(f)
}

// ValueOf returns a numeric variable's value for a flight.
func ValueOf(name string, f *Flight) float64 {
	return float64(variables[name].intOf(f))
}
