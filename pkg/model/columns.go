package model

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Columns maps a flight CSV's column names onto the canonical Flight fields, so that a new
// CSV layout needs a config file, not code. It is recorded in the model artifact, which lets
// any tool holding the model read the same CSV (bench builds request bodies that way).
type Columns struct {
	Month      string `json:"month" yaml:"month"`
	DayOfMonth string `json:"day_of_month" yaml:"day_of_month"`
	// DayOfWeek may be empty: the day of week is then derived from Year, Month and DayOfMonth.
	DayOfWeek  string `json:"day_of_week,omitempty" yaml:"day_of_week"`
	Year       string `json:"year,omitempty" yaml:"year"`
	Origin     string `json:"origin" yaml:"origin"`
	Dest       string `json:"dest" yaml:"dest"`
	Carrier    string `json:"carrier" yaml:"carrier"`
	CRSDepTime string `json:"crs_dep_time" yaml:"crs_dep_time"`
	// NAValues are the cell values that mean "missing"; the empty cell always does.
	NAValues []string `json:"na_values,omitempty" yaml:"na_values"`
}

// BTSColumns is the layout of the BTS on-time performance CSV (flightdata.csv).
var BTSColumns = Columns{
	Month: "MONTH", DayOfMonth: "DAY_OF_MONTH", DayOfWeek: "DAY_OF_WEEK", Year: "YEAR",
	Origin: "ORIGIN", Dest: "DEST", Carrier: "UNIQUE_CARRIER", CRSDepTime: "CRS_DEP_TIME",
}

// ErrMissing is wrapped by a ParseError whose cell is empty or an NA value.
var ErrMissing = errors.New("missing value")

// ParseError names the canonical field, CSV column and cell that could not be parsed.
type ParseError struct {
	Field  string
	Column string
	Value  string
	Err    error
}

func (e *ParseError) Error() string {
	if errors.Is(e.Err, ErrMissing) {
		return fmt.Sprintf("column %s (%s): missing value", e.Column, e.Field)
	}
	return fmt.Sprintf("column %s (%s): %q: %v", e.Column, e.Field, e.Value, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Parser turns CSV records into Flights for one header.
type Parser struct {
	cols                                               Columns
	month, dom, dow, year, origin, dest, carrier, time int
	na                                                 map[string]bool
}

// NewParser resolves the columns against a CSV header. It names every required column that
// the header lacks.
func NewParser(header []string, cols Columns) (*Parser, error) {
	idx := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := idx[h]; !dup {
			idx[h] = i
		}
	}
	p := &Parser{cols: cols, na: map[string]bool{"": true}, dow: -1, year: -1}
	for _, v := range cols.NAValues {
		p.na[v] = true
	}
	var missing []string
	need := func(field, col string) int {
		if col == "" {
			missing = append(missing, fmt.Sprintf("%s (no column configured)", field))
			return -1
		}
		i, ok := idx[col]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (for %s)", col, field))
		}
		return i
	}
	p.month = need("month", cols.Month)
	p.dom = need("day_of_month", cols.DayOfMonth)
	if cols.DayOfWeek != "" {
		p.dow = need("day_of_week", cols.DayOfWeek)
	} else {
		p.year = need("year (to derive day_of_week)", cols.Year)
	}
	p.origin = need("origin", cols.Origin)
	p.dest = need("dest", cols.Dest)
	p.carrier = need("carrier", cols.Carrier)
	p.time = need("crs_dep_time", cols.CRSDepTime)
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing required columns: %s", strings.Join(missing, ", "))
	}
	return p, nil
}

// IsNA reports whether a cell counts as missing.
func (p *Parser) IsNA(cell string) bool { return p.na[strings.TrimSpace(cell)] }

// Parse fills f from one record and validates it. The first unusable field is returned as a
// *ParseError; a missing cell wraps ErrMissing.
func (p *Parser) Parse(rec []string, f *Flight) error {
	missing, err := p.ParseFields(rec, f)
	if err != nil {
		return err
	}
	if missing != 0 {
		field := missing.Names()[0]
		col, _ := p.column(field)
		return &ParseError{Field: field, Column: col, Err: ErrMissing}
	}
	return p.Validate(rec, f)
}

// ParseFields fills the fields of f it can and reports which are missing (left zero), so a
// caller can impute them. An unparseable cell is an error; ranges are not checked (see Validate).
func (p *Parser) ParseFields(rec []string, f *Flight) (missing FieldSet, err error) {
	ints := [...]struct {
		dst   *int
		i     int
		bit   FieldSet
		field string
		col   string
	}{
		{&f.Month, p.month, FieldMonth, "month", p.cols.Month},
		{&f.DayOfMonth, p.dom, FieldDayOfMonth, "day_of_month", p.cols.DayOfMonth},
		{&f.CRSDepTime, p.time, FieldCRSDepTime, "crs_dep_time", p.cols.CRSDepTime},
	}
	for _, c := range ints {
		s := p.cell(rec, c.i)
		if p.na[s] {
			missing |= c.bit
			continue
		}
		if *c.dst, err = ParseInt(s); err != nil {
			return missing, &ParseError{Field: c.field, Column: c.col, Value: s, Err: err}
		}
	}
	if p.dow >= 0 {
		s := p.cell(rec, p.dow)
		if p.na[s] {
			missing |= FieldDayOfWeek
		} else if f.DayOfWeek, err = ParseInt(s); err != nil {
			return missing, &ParseError{Field: "day_of_week", Column: p.cols.DayOfWeek, Value: s, Err: err}
		}
	} else {
		s := p.cell(rec, p.year)
		switch {
		case p.na[s] || missing&(FieldMonth|FieldDayOfMonth) != 0:
			missing |= FieldDayOfWeek
		default:
			year, err := ParseInt(s)
			if err != nil {
				return missing, &ParseError{Field: "year", Column: p.cols.Year, Value: s, Err: err}
			}
			f.DayOfWeek = weekdayOf(year, f.Month, f.DayOfMonth)
		}
	}
	strs := [...]struct {
		dst *string
		i   int
		bit FieldSet
	}{
		{&f.Origin, p.origin, FieldOrigin},
		{&f.Dest, p.dest, FieldDest},
		{&f.Carrier, p.carrier, FieldCarrier},
	}
	for _, c := range strs {
		s := p.cell(rec, c.i)
		if p.na[s] {
			missing |= c.bit
			continue
		}
		*c.dst = s
	}
	return missing, nil
}

// Validate range-checks a parsed flight and reports the offending cell as a *ParseError.
func (p *Parser) Validate(rec []string, f *Flight) error {
	err := f.Validate()
	if err == nil {
		return nil
	}
	var fe *FieldError
	errors.As(err, &fe)
	col, idx := p.column(fe.Field)
	val := fmt.Sprint(fe.Value)
	if idx >= 0 && rec != nil {
		val = p.cell(rec, idx)
	}
	return &ParseError{Field: fe.Field, Column: col, Value: val, Err: errors.New(fe.Reason)}
}

// FieldSet is a set of canonical Flight fields.
type FieldSet uint8

// The canonical fields, as FieldSet members.
const (
	FieldMonth FieldSet = 1 << iota
	FieldDayOfMonth
	FieldDayOfWeek
	FieldOrigin
	FieldDest
	FieldCarrier
	FieldCRSDepTime
)

var fieldNames = [...]string{"month", "day_of_month", "day_of_week", "origin", "dest", "carrier", "crs_dep_time"}

// Names lists the set's field names in canonical order.
func (s FieldSet) Names() []string {
	var out []string
	for i, n := range fieldNames {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// column returns the CSV column behind a canonical field and its index (-1 when derived).
func (p *Parser) column(field string) (string, int) {
	switch field {
	case "month":
		return p.cols.Month, p.month
	case "day_of_month":
		return p.cols.DayOfMonth, p.dom
	case "day_of_week":
		if p.cols.DayOfWeek == "" {
			return p.cols.Year + "/" + p.cols.Month + "/" + p.cols.DayOfMonth, -1
		}
		return p.cols.DayOfWeek, p.dow
	case "crs_dep_time":
		return p.cols.CRSDepTime, p.time
	}
	return field, -1
}

func (p *Parser) cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// ParseInt parses an integer cell, accepting the "1.00" and "0940" forms BTS exports use.
func ParseInt(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return 0, errors.New("not an integer")
	}
	return int(x), nil
}

// ReadFlights parses a flight CSV with the model's recorded column mapping and calls fn with
// each usable row (rowNum counts data rows from 1). Rows with a missing or unparseable field
// are skipped: this reader feeds load generators and scoring, not training, whose cleaning
// reports every drop.
func (m *Model) ReadFlights(r io.Reader, fn func(rowNum int, f Flight) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("could not read csv header: %w", err)
	}
	p, err := NewParser(header, m.Input)
	if err != nil {
		return err
	}
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("row %d: %w", row, err)
		}
		var f Flight
		if p.Parse(rec, &f) != nil {
			continue
		}
		if err := fn(row, f); err != nil {
			return err
		}
	}
}
