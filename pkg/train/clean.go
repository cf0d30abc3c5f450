package train

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/delayctl/delayctl/pkg/model"
)

// Drop reasons reported by Clean.
const (
	DropCancelled    = "cancelled"
	DropDiverted     = "diverted"
	DropMissingLabel = "missing label"
	DropInvalid      = "unparseable field"
)

// CleanReport says what cleaning did to the rows.
type CleanReport struct {
	RowsRead int `json:"rows_read"`
	RowsKept int `json:"rows_kept"`
	// Dropped counts dropped rows by reason: cancelled, diverted, missing label, unparseable
	// field, or "missing <field>" for a missing value whose policy is drop.
	Dropped map[string]int `json:"dropped"`
	// Invalid lists the first rows dropped for an unparseable field (see MaxInvalidListed).
	Invalid []RowIssue `json:"invalid,omitempty"`
	// Imputed counts imputed values by field, with the value used.
	Imputed map[string]Imputation `json:"imputed,omitempty"`
	// Delayed counts kept rows labelled delayed.
	Delayed int `json:"delayed"`
}

// Imputation records how many values of a field were filled and with what.
type Imputation struct {
	Count  int    `json:"count"`
	Method string `json:"method"`
	Value  string `json:"value"`
}

// RowIssue locates one bad cell: file, line, data row number (1 = first row after the
// file's header), column, value and reason.
type RowIssue struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line"`
	Row    int    `json:"row"`
	Column string `json:"column"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

// MaxInvalidListed bounds CleanReport.Invalid; the count in Dropped is always complete.
const MaxInvalidListed = 20

// RowError is a bad cell that stops cleaning under invalid_rows: error.
type RowError struct{ RowIssue }

func (e *RowError) Error() string {
	return fmt.Sprintf("%s: row %d, column %s: %q: %s", fileLine(e.File, e.Line), e.Row, e.Column, e.Value, e.Reason)
}

// fileLine names a place in an input the way compilers do: "file:line", or "line N" for an
// unnamed stream.
func fileLine(file string, line int) string {
	if file == "" {
		return fmt.Sprintf("line %d", line)
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// ErrNoRows means no row survived cleaning.
var ErrNoRows = errors.New("no usable rows")

// CleanInput is one source of flight CSV text for Clean.
type CleanInput struct {
	// Name is used in messages ("" for an unnamed stream).
	Name string
	R    io.Reader
}

// Clean reads a flight CSV, applies the config's label, cancelled/diverted and missing-value
// policies, and returns the kept rows with a report. See CleanInputs.
func Clean(r io.Reader, cfg Config) (*Dataset, *CleanReport, error) {
	return CleanInputs([]CleanInput{{R: r}}, cfg)
}

// CleanInputs cleans one or more CSVs into one Dataset. It streams each file once
// (encoding/csv, one record buffer) into the compact Dataset: memory grows by
// BytesPerRow per kept row, whatever the CSV's width. Each file has its own header, which
// may order the columns differently. A bad cell stops cleaning with a *RowError naming
// file, line, row and column unless the config says invalid_rows: drop. Imputation is
// exact without a second read: modes count values, medians read a histogram (every numeric
// field has a small bounded range).
func CleanInputs(ins []CleanInput, cfg Config) (*Dataset, *CleanReport, error) {
	c := &cleaner{cfg: cfg}
	c.rep.Dropped = map[string]int{}
	for _, in := range ins {
		if err := c.addFile(in); err != nil {
			return nil, nil, err
		}
	}
	return c.finish()
}

type cleaner struct {
	cfg  Config
	file string
	p    *model.Parser
	// label is the column index of the 0/1 label or of the delay minutes.
	label   int
	minutes bool
	cancel  int // -1 when not configured
	divert  int
	ds      Dataset
	missing bool // some kept row awaits imputation
	rep     CleanReport
	// yearCol is the current file's year column, -1 without one; noYears gives up on
	// years for the whole data set (see addYear).
	yearCol int
	noYears bool
}

func (c *cleaner) addFile(in CleanInput) error {
	cr := csv.NewReader(in.R)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	c.file = in.Name
	wrap := func(err error) error {
		if in.Name == "" {
			return err
		}
		return fmt.Errorf("%s: %w", in.Name, err)
	}
	header, err := cr.Read()
	if err == io.EOF {
		return wrap(errors.New("the file is empty: no header row"))
	}
	if err != nil {
		return wrap(fmt.Errorf("could not read the header: %w", err))
	}
	if err := c.setHeader(header); err != nil {
		return wrap(err)
	}
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return wrap(fmt.Errorf("row %d: %w", row, err))
		}
		line, _ := cr.FieldPos(0)
		if err := c.add(row, line, rec); err != nil {
			return err
		}
	}
}

// ErrDuplicateColumn is wrapped when a header names a column twice.
var ErrDuplicateColumn = errors.New("duplicate column name")

func (c *cleaner) setHeader(header []string) error {
	idx := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if j, dup := idx[h]; dup && h != "" {
			return fmt.Errorf("%w %q: columns %d and %d", ErrDuplicateColumn, h, j+1, i+1)
		}
		idx[h] = i
	}
	p, err := model.NewParser(header, c.cfg.Columns)
	if err != nil {
		return err
	}
	c.p, c.cancel, c.divert = p, -1, -1
	c.setYearColumn(header)
	cfg := c.cfg
	var missing []string
	find := func(col, what string) int {
		i, ok := idx[col]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (for %s)", col, what))
			return -1
		}
		return i
	}
	if cfg.Label.Column != "" {
		c.label, c.minutes = find(cfg.Label.Column, "label"), false
	} else {
		c.label, c.minutes = find(cfg.Label.DelayMinutesColumn, "label delay minutes"), true
	}
	if col := cfg.Label.Cancelled.Column; col != "" {
		c.cancel = find(col, "cancelled")
	}
	if col := cfg.Label.Diverted.Column; col != "" {
		c.divert = find(col, "diverted")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required columns: %s", strings.Join(missing, ", "))
	}
	return nil
}

func (c *cleaner) invalid(row, line int, col, val, reason string) error {
	issue := RowIssue{File: c.file, Line: line, Row: row, Column: col, Value: val, Reason: reason}
	if c.cfg.InvalidRows != PolicyDrop {
		return &RowError{issue}
	}
	c.rep.Dropped[DropInvalid]++
	if len(c.rep.Invalid) < MaxInvalidListed {
		c.rep.Invalid = append(c.rep.Invalid, issue)
	}
	return nil
}

// flag parses a 0/1 cell ("1", "1.00"); ok is false for a missing cell.
func (c *cleaner) flag(rec []string, i int) (v, ok bool, err error) {
	if i < 0 || i >= len(rec) {
		return false, false, nil
	}
	s := strings.TrimSpace(rec[i])
	if c.p.IsNA(s) {
		return false, false, nil
	}
	switch s { // the common forms, without a float parse
	case "0", "0.00":
		return false, true, nil
	case "1", "1.00":
		return true, true, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || (x != 0 && x != 1) {
		return false, false, errors.New("want 0 or 1")
	}
	return x == 1, true, nil
}

func (c *cleaner) add(row, line int, rec []string) error {
	c.rep.RowsRead++
	delayed, known := false, false
	for _, o := range [...]struct {
		i      int
		policy OutcomePolicy
		reason string
	}{{c.cancel, c.cfg.Label.Cancelled, DropCancelled}, {c.divert, c.cfg.Label.Diverted, DropDiverted}} {
		if o.i < 0 {
			continue
		}
		v, _, err := c.flag(rec, o.i)
		if err != nil {
			return c.invalid(row, line, o.policy.Column, rec[o.i], err.Error())
		}
		if !v {
			continue
		}
		if o.policy.Policy == PolicyDelayed {
			delayed, known = true, true
			continue
		}
		c.rep.Dropped[o.reason]++
		return nil
	}
	if !known {
		var err error
		if c.minutes {
			delayed, known, err = c.minutesLabel(rec)
		} else {
			delayed, known, err = c.flag(rec, c.label)
		}
		if err != nil {
			return c.invalid(row, line, c.labelColumn(), cellAt(rec, c.label), err.Error())
		}
		if !known {
			c.rep.Dropped[DropMissingLabel]++
			return nil
		}
	}
	var f model.Flight
	missing, err := c.p.ParseFields(rec, &f)
	if err != nil {
		var pe *model.ParseError
		errors.As(err, &pe)
		return c.invalid(row, line, pe.Column, pe.Value, pe.Err.Error())
	}
	for _, field := range missing.Names() {
		if pol := c.cfg.Missing[field]; pol == "" || pol == PolicyDrop {
			c.rep.Dropped["missing "+field]++
			return nil
		}
	}
	// Range-check the fields that are present; a missing one stands in as a valid value
	// until imputation fills it (and the row is checked again).
	g := f
	if missing != 0 {
		c.missing = true
		fillPlaceholders(&g, missing)
	}
	if err := c.p.Validate(rec, &g); err != nil {
		var pe *model.ParseError
		errors.As(err, &pe)
		return c.invalid(row, line, pe.Column, pe.Value, pe.Err.Error())
	}
	if err := c.ds.appendRow(&f, missing, delayed); err != nil {
		return fmt.Errorf("%s: %w", fileLine(c.file, line), err)
	}
	c.addYear(rec)
	return nil
}

// fillPlaceholders sets the missing fields of f to in-range values.
func fillPlaceholders(f *model.Flight, missing model.FieldSet) {
	for _, p := range [...]struct {
		bit model.FieldSet
		dst *int
		v   int
	}{{model.FieldMonth, &f.Month, 1}, {model.FieldDayOfMonth, &f.DayOfMonth, 1}, {model.FieldDayOfWeek, &f.DayOfWeek, 1}, {model.FieldCRSDepTime, &f.CRSDepTime, 0}} {
		if missing&p.bit != 0 {
			*p.dst = p.v
		}
	}
}

func (c *cleaner) labelColumn() string {
	if c.minutes {
		return c.cfg.Label.DelayMinutesColumn
	}
	return c.cfg.Label.Column
}

func (c *cleaner) minutesLabel(rec []string) (delayed, known bool, err error) {
	s := strings.TrimSpace(cellAt(rec, c.label))
	if c.p.IsNA(s) {
		return false, false, nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false, false, errors.New("want a number of minutes")
	}
	return x >= c.cfg.Label.ThresholdMinutes, true, nil
}

func cellAt(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

func (c *cleaner) finish() (*Dataset, *CleanReport, error) {
	if c.missing {
		if err := c.impute(); err != nil {
			return nil, nil, err
		}
	}
	c.rep.RowsKept = c.ds.Len()
	c.rep.Delayed = c.ds.Positives()
	if c.rep.RowsKept == 0 {
		return nil, &c.rep, fmt.Errorf("%w: all %d rows were dropped (%s)", ErrNoRows, c.rep.RowsRead, c.rep.droppedSummary())
	}
	return &c.ds, &c.rep, nil
}

// smallField is a one- or two-byte integer column of a Dataset, for imputation.
type smallField struct {
	name string
	get  func(i int) int
	set  func(i, v int)
	miss int
}

// impute fills missing fields with the mode or median of the kept rows that have them, then
// drops rows the filled values make impossible (31 in a 30-day month). Counting is exact and
// needs memory only for the distinct values.
func (c *cleaner) impute() error {
	d := &c.ds
	c.rep.Imputed = map[string]Imputation{}
	ints := []smallField{
		{"month", func(i int) int { return int(d.Month[i]) }, func(i, v int) { d.Month[i] = uint8(v) }, missingSmall},
		{"day_of_month", func(i int) int { return int(d.DayOfMonth[i]) }, func(i, v int) { d.DayOfMonth[i] = uint8(v) }, missingSmall},
		{"day_of_week", func(i int) int { return int(d.DayOfWeek[i]) }, func(i, v int) { d.DayOfWeek[i] = uint8(v) }, missingSmall},
	}
	strs := []int{strOrigin, strDest, strCarrier}
	// Canonical order: month, day_of_month, day_of_week, origin, dest, carrier, crs_dep_time.
	dep := smallField{"crs_dep_time", func(i int) int { return int(d.DepTime[i]) }, func(i, v int) { d.DepTime[i] = uint16(v) }, missingWide}
	var filled []bool // rows that had a value filled in
	mark := func(i int) {
		if filled == nil {
			filled = make([]bool, d.Len())
		}
		filled[i] = true
	}
	imputeInt := func(f smallField) error {
		counts := map[int]int{}
		n := 0
		for i := 0; i < d.Len(); i++ {
			if v := f.get(i); v == f.miss {
				n++
			} else {
				counts[v]++
			}
		}
		if n == 0 {
			return nil
		}
		if len(counts) == 0 {
			return fmt.Errorf("cannot impute %s: no row has a value", f.name)
		}
		method := c.cfg.Missing[f.name]
		var iv int
		if method == ImputeMedian {
			iv = upperMedian(counts)
		} else {
			iv = intMode(counts)
		}
		for i := 0; i < d.Len(); i++ {
			if f.get(i) == f.miss {
				f.set(i, iv)
				mark(i)
			}
		}
		c.rep.Imputed[f.name] = Imputation{Count: n, Method: method, Value: strconv.Itoa(iv)}
		return nil
	}
	for _, f := range ints {
		if err := imputeInt(f); err != nil {
			return err
		}
	}
	for _, k := range strs {
		col := d.strColumn(k)
		counts := map[uint16]int{}
		n := 0
		for _, id := range col {
			if id == missingWide {
				n++
			} else {
				counts[id]++
			}
		}
		if n == 0 {
			continue
		}
		if len(counts) == 0 {
			return fmt.Errorf("cannot impute %s: no row has a value", strFieldNames[k])
		}
		values := d.dictValues(k)
		best, bestN := uint16(0), 0
		for id, cnt := range counts {
			if cnt > bestN || (cnt == bestN && values[id] < values[best]) {
				best, bestN = id, cnt
			}
		}
		for i, id := range col {
			if id == missingWide {
				col[i] = best
				mark(i)
			}
		}
		c.rep.Imputed[strFieldNames[k]] = Imputation{Count: n, Method: c.cfg.Missing[strFieldNames[k]], Value: values[best]}
	}
	if err := imputeInt(dep); err != nil {
		return err
	}
	kept := 0
	for i := 0; i < d.Len(); i++ {
		if filled != nil && filled[i] {
			if f := d.Flight(i); f.Validate() != nil {
				c.rep.Dropped["invalid after imputation"]++
				continue
			}
		}
		d.keep(kept, i)
		kept++
	}
	d.truncate(kept)
	return nil
}

// upperMedian is the value at sorted position n/2 of the counted values.
func upperMedian(counts map[int]int) int {
	vals := make([]int, 0, len(counts))
	n := 0
	for v, c := range counts {
		vals = append(vals, v)
		n += c
	}
	slices.Sort(vals)
	seen := 0
	for _, v := range vals {
		seen += counts[v]
		if seen > n/2 {
			return v
		}
	}
	return vals[len(vals)-1]
}

// intMode returns the most frequent value; on ties the one whose decimal string sorts first,
// as the report shows values as strings.
func intMode(counts map[int]int) int {
	best, bestN := 0, 0
	for v, n := range counts {
		if n > bestN || (n == bestN && strconv.Itoa(v) < strconv.Itoa(best)) {
			best, bestN = v, n
		}
	}
	return best
}

func (r *CleanReport) droppedSummary() string {
	reasons := make([]string, 0, len(r.Dropped))
	for k := range r.Dropped {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	parts := make([]string, 0, len(reasons))
	for _, k := range reasons {
		parts = append(parts, fmt.Sprintf("%s: %d", k, r.Dropped[k]))
	}
	if len(parts) == 0 {
		return "the file has no data rows"
	}
	return strings.Join(parts, ", ")
}
