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

// Dataset is a cleaned flight table: one Flight and one label per kept row.
type Dataset struct {
	Flights []model.Flight
	Delayed []bool
	// Years holds each row's year when the CSV has the configured year column, else nil.
	Years []int
}

// Len is the number of rows.
func (d *Dataset) Len() int { return len(d.Flights) }

// Positives counts the delayed rows.
func (d *Dataset) Positives() int {
	n := 0
	for _, y := range d.Delayed {
		if y {
			n++
		}
	}
	return n
}

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

// RowIssue locates one bad cell: data row number (1 = first row after the header), column,
// value and reason.
type RowIssue struct {
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
	return fmt.Sprintf("row %d, column %s: %q: %s", e.Row, e.Column, e.Value, e.Reason)
}

// ErrNoRows means no row survived cleaning.
var ErrNoRows = errors.New("no usable rows")

// Clean reads a flight CSV, applies the config's label, cancelled/diverted and missing-value
// policies, and returns the kept rows with a report. It streams the file (encoding/csv, one
// record buffer) rather than loading it into a gota DataFrame: a DataFrame of 1,000,000 BTS
// rows boxes 26 million cells and needs several GiB, while the training matrix needs only the
// seven canonical fields per row. A bad cell stops cleaning with a *RowError naming row and
// column unless the config says invalid_rows: drop.
func Clean(r io.Reader, cfg Config) (*Dataset, *CleanReport, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, errors.New("the file is empty: no header row")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("could not read the header: %w", err)
	}
	c, err := newCleaner(header, cfg)
	if err != nil {
		return nil, nil, err
	}
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("row %d: %w", row, err)
		}
		if err := c.add(row, rec); err != nil {
			return nil, nil, err
		}
	}
	return c.finish()
}

type cleaner struct {
	cfg      Config
	p        *model.Parser
	label    int // column index of the 0/1 label or of the delay minutes
	minutes  bool
	cancel   int // -1 when not configured
	divert   int
	ds       Dataset
	missing  []model.FieldSet // per kept row, fields awaiting imputation
	rep      CleanReport
	interned map[string]string
	yearCol  int // -1 when there is no year column
}

func newCleaner(header []string, cfg Config) (*cleaner, error) {
	p, err := model.NewParser(header, cfg.Columns)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, h := range header {
		idx[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	c := &cleaner{cfg: cfg, p: p, cancel: -1, divert: -1, interned: map[string]string{}, yearCol: yearColumn(header, cfg.Columns)}
	c.rep.Dropped = map[string]int{}
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
		c.label = find(cfg.Label.Column, "label")
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
		return nil, fmt.Errorf("missing required columns: %s", strings.Join(missing, ", "))
	}
	return c, nil
}

func (c *cleaner) invalid(row int, col, val, reason string) error {
	issue := RowIssue{Row: row, Column: col, Value: val, Reason: reason}
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
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || (x != 0 && x != 1) {
		return false, false, errors.New("want 0 or 1")
	}
	return x == 1, true, nil
}

func (c *cleaner) add(row int, rec []string) error {
	c.rep.RowsRead++
	delayed, known := false, false
	for _, o := range []struct {
		i      int
		policy OutcomePolicy
		reason string
	}{{c.cancel, c.cfg.Label.Cancelled, DropCancelled}, {c.divert, c.cfg.Label.Diverted, DropDiverted}} {
		if o.i < 0 {
			continue
		}
		v, _, err := c.flag(rec, o.i)
		if err != nil {
			return c.invalid(row, o.policy.Column, rec[o.i], err.Error())
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
			return c.invalid(row, c.labelColumn(), cellAt(rec, c.label), err.Error())
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
		return c.invalid(row, pe.Column, pe.Value, pe.Err.Error())
	}
	for _, field := range missing.Names() {
		if pol := c.cfg.Missing[field]; pol == "" || pol == PolicyDrop {
			c.rep.Dropped["missing "+field]++
			return nil
		}
	}
	if missing == 0 {
		if err := c.p.Validate(rec, &f); err != nil {
			var pe *model.ParseError
			errors.As(err, &pe)
			return c.invalid(row, pe.Column, pe.Value, pe.Err.Error())
		}
	}
	f.Origin, f.Dest, f.Carrier = c.intern(f.Origin), c.intern(f.Dest), c.intern(f.Carrier)
	c.ds.Flights = append(c.ds.Flights, f)
	c.ds.Delayed = append(c.ds.Delayed, delayed)
	c.addYear(rec)
	if missing != 0 || c.missing != nil {
		if c.missing == nil {
			c.missing = make([]model.FieldSet, len(c.ds.Flights)-1, cap(c.ds.Flights))
		}
		c.missing = append(c.missing, missing)
	}
	return nil
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

// intern keeps one copy of each category string. encoding/csv hands out substrings of one
// string per line, so holding a field would otherwise pin the whole line in memory.
func (c *cleaner) intern(s string) string {
	if v, ok := c.interned[s]; ok {
		return v
	}
	s = strings.Clone(s)
	c.interned[s] = s
	return s
}

func (c *cleaner) finish() (*Dataset, *CleanReport, error) {
	if c.missing != nil {
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

// impute fills missing fields with the mode or median of the kept rows that have them.
func (c *cleaner) impute() error {
	c.rep.Imputed = map[string]Imputation{}
	for bit := model.FieldMonth; bit <= model.FieldCRSDepTime; bit <<= 1 {
		field := bit.Names()[0]
		var present []int
		var strs []string
		n := 0
		for i, m := range c.missing {
			if m&bit != 0 {
				n++
				continue
			}
			f := &c.ds.Flights[i]
			switch bit {
			case model.FieldOrigin:
				strs = append(strs, f.Origin)
			case model.FieldDest:
				strs = append(strs, f.Dest)
			case model.FieldCarrier:
				strs = append(strs, f.Carrier)
			default:
				present = append(present, *intField(f, bit))
			}
		}
		if n == 0 {
			continue
		}
		method := c.cfg.Missing[field]
		var value string
		var iv int
		switch {
		case strs != nil:
			value = mode(strs)
		case len(present) == 0:
			return fmt.Errorf("cannot impute %s: no row has a value", field)
		case method == ImputeMedian:
			slices.Sort(present)
			iv = present[len(present)/2]
			value = strconv.Itoa(iv)
		default:
			value = mode(intStrings(present))
			iv, _ = strconv.Atoi(value)
		}
		if value == "" {
			return fmt.Errorf("cannot impute %s: no row has a value", field)
		}
		for i, m := range c.missing {
			if m&bit == 0 {
				continue
			}
			f := &c.ds.Flights[i]
			switch bit {
			case model.FieldOrigin:
				f.Origin = c.intern(value)
			case model.FieldDest:
				f.Dest = c.intern(value)
			case model.FieldCarrier:
				f.Carrier = c.intern(value)
			default:
				*intField(f, bit) = iv
			}
		}
		c.rep.Imputed[field] = Imputation{Count: n, Method: method, Value: value}
	}
	// A filled-in day can make an impossible date (31 in a 30-day month): check every row.
	kept := 0
	for i := range c.ds.Flights {
		if c.missing[i] != 0 && c.ds.Flights[i].Validate() != nil {
			c.rep.Dropped["invalid after imputation"]++
			continue
		}
		c.ds.Flights[kept], c.ds.Delayed[kept] = c.ds.Flights[i], c.ds.Delayed[i]
		kept++
	}
	c.ds.Flights, c.ds.Delayed = c.ds.Flights[:kept], c.ds.Delayed[:kept]
	return nil
}

func intField(f *model.Flight, bit model.FieldSet) *int {
	switch bit {
	case model.FieldMonth:
		return &f.Month
	case model.FieldDayOfMonth:
		return &f.DayOfMonth
	case model.FieldDayOfWeek:
		return &f.DayOfWeek
	default:
		return &f.CRSDepTime
	}
}

func intStrings(xs []int) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Itoa(x)
	}
	return out
}

// mode returns the most frequent value, the smallest on ties so the result is deterministic.
func mode(xs []string) string {
	counts := map[string]int{}
	for _, x := range xs {
		counts[x]++
	}
	best, bestN := "", 0
	for v, n := range counts {
		if n > bestN || (n == bestN && v < best) {
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
